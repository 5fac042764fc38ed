-- Alerts raised by the rule engine, their lifecycle transitions, device test mode and the unit risk score.

-- A device in test mode (maintenance, commissioning) raises test alerts only, kept out of statistics.
ALTER TABLE devices ADD COLUMN test_mode_until timestamptz;

CREATE TABLE alerts (
  id                    bigserial PRIMARY KEY,
  unit_id               text NOT NULL REFERENCES units (id),
  -- '' for unit-level alerts (false-alarm rate), so the one-open-alert key has no NULLs.
  device_id             text NOT NULL DEFAULT '',
  -- The panel's point (loop-address) for event alerts, '' otherwise.
  point                 text NOT NULL DEFAULT '',
  rule_id               text NOT NULL,
  -- Fire-code classes of GB/T 26875.3 and NFPA 72.
  class                 text NOT NULL CHECK (class IN ('fire', 'supervisory', 'trouble', 'isolation', 'test')),
  -- For troubles: fault, power_fault, communication_loss, tamper, low_battery, isolation_expired, maintenance.
  trouble_type          text,
  severity              text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
  title                 text NOT NULL,
  detail                jsonb NOT NULL DEFAULT '{}',
  status                text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
  -- Whether the condition that raised it still holds; a restored fire alert stays open with this false.
  active                boolean NOT NULL DEFAULT true,
  count                 integer NOT NULL DEFAULT 1,
  first_seen            timestamptz NOT NULL,
  last_seen             timestamptz NOT NULL,
  cleared_at            timestamptz,
  -- Fire alerts from one detector await verification; a second source in the unit confirms them.
  verification          text CHECK (verification IN ('single_source', 'two_sources', 'operator')),
  escalation_level      integer NOT NULL DEFAULT 0,
  escalated_at          timestamptz,
  acknowledged_at       timestamptz,
  acknowledged_by       text,
  confirmed_at          timestamptz,
  confirmed_by          text,
  resolved_at           timestamptz,
  resolved_by           text,
  disposition           text CHECK (disposition IN ('real_fire', 'false_alarm', 'test', 'device_fault', 'other', 'restored')),
  resolution_comment    text,
  isolation_owner       text,
  isolation_expires_at  timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
  -- A fire alert never closes without a person's disposition.
  CHECK (class <> 'fire' OR status <> 'resolved' OR (disposition IS NOT NULL AND disposition <> 'restored'))
);
-- One open alert per (unit, device, point, rule): a recurrence updates it.
CREATE UNIQUE INDEX alerts_one_open ON alerts (unit_id, device_id, point, rule_id) WHERE status <> 'resolved';
CREATE INDEX alerts_unit_status ON alerts (unit_id, status);
CREATE INDEX alerts_status_class ON alerts (status, class);
CREATE INDEX alerts_resolved_unit ON alerts (unit_id, resolved_at) WHERE status = 'resolved';

CREATE TABLE alert_transitions (
  id          bigserial PRIMARY KEY,
  alert_id    bigint NOT NULL REFERENCES alerts (id),
  at          timestamptz NOT NULL DEFAULT now(),
  -- opened, recurred, restored, cleared, escalated, reminded, upgraded, acknowledged, confirmed, resolved,
  -- isolation_set
  action      text NOT NULL,
  -- 'system' for the engine, otherwise the person or integration that acted.
  actor       text NOT NULL,
  comment     text,
  from_status text,
  to_status   text NOT NULL,
  data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, id);

-- The latest risk score per unit; its history goes to InfluxDB (measurement unit_risk).
CREATE TABLE unit_risk (
  unit_id      text PRIMARY KEY REFERENCES units (id),
  score        integer NOT NULL CHECK (score BETWEEN 0 AND 100),
  level        text NOT NULL CHECK (level IN ('low', 'medium', 'high', 'critical')),
  factors      jsonb NOT NULL,
  computed_at  timestamptz NOT NULL
);
