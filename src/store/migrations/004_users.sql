-- Users, refresh tokens and API keys. Every principal has a role and a jurisdiction subtree it is bound to
-- (NULL: every jurisdiction, for administrators of the whole system only).

CREATE TABLE users (
  id               text PRIMARY KEY,
  username         text NOT NULL UNIQUE,
  display_name     text NOT NULL,
  -- scrypt, the same scheme as device secrets (src/broker/secrets.ts)
  password_hash    text NOT NULL,
  role             text NOT NULL CHECK (role IN ('admin', 'operator', 'inspector', 'viewer')),
  jurisdiction_id  text REFERENCES jurisdictions (id),
  disabled         boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  CHECK (jurisdiction_id IS NOT NULL OR role = 'admin')
);

-- Refresh tokens rotate: each use replaces the token; using a replaced one again revokes the whole family (theft).
CREATE TABLE refresh_tokens (
  id           text PRIMARY KEY,
  family       text NOT NULL,
  user_id      text NOT NULL REFERENCES users (id),
  -- SHA-256 of the token's secret part (256 random bits: a fast hash is enough)
  token_hash   text NOT NULL,
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  revoked_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE api_keys (
  id               text PRIMARY KEY,
  name             text NOT NULL,
  key_hash         text NOT NULL,
  role             text NOT NULL CHECK (role IN ('admin', 'operator', 'inspector', 'viewer')),
  jurisdiction_id  text REFERENCES jurisdictions (id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  revoked_at       timestamptz,
  last_used_at     timestamptz,
  CHECK (jurisdiction_id IS NOT NULL OR role = 'admin')
);
