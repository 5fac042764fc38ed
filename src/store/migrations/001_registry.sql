-- Registry: jurisdictions (city → district → street), units, devices.

CREATE TABLE jurisdictions (
  id          text PRIMARY KEY,
  parent_id   text REFERENCES jurisdictions (id),
  name        text NOT NULL,
  level       text NOT NULL CHECK (level IN ('city', 'district', 'street')),
  -- ids from the root down to this one, itself included: a subtree is "WHERE $1 = ANY (ancestors)".
  ancestors   text[] NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((level = 'city') = (parent_id IS NULL))
);
CREATE INDEX jurisdictions_ancestors ON jurisdictions USING gin (ancestors);

CREATE TABLE units (
  id               text PRIMARY KEY,
  jurisdiction_id  text NOT NULL REFERENCES jurisdictions (id),
  name             text NOT NULL,
  address          text NOT NULL,
  category         text NOT NULL CHECK (category IN ('high_risk', 'key', 'general')),
  latitude         double precision CHECK (latitude BETWEEN -90 AND 90),
  longitude        double precision CHECK (longitude BETWEEN -180 AND 180),
  contact_name     text NOT NULL,
  contact_phone    text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_jurisdiction ON units (jurisdiction_id);

CREATE TABLE devices (
  id                 text PRIMARY KEY,
  unit_id            text NOT NULL REFERENCES units (id),
  name               text NOT NULL DEFAULT '',
  kind               text NOT NULL,
  protocol           text NOT NULL CHECK (protocol IN ('mqtt', 'modbus', 'gb26875')),
  profile            text NOT NULL,
  -- scrypt hash of the device secret; NULL for devices that do not log in (polled Modbus slaves).
  secret_hash        text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  last_seen_at       timestamptz,
  online             boolean NOT NULL DEFAULT false,
  online_changed_at  timestamptz
);
CREATE INDEX devices_unit ON devices (unit_id);
