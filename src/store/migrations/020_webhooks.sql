-- Webhook subscriptions (a jurisdiction subtree and alert classes; NULL jurisdiction: every one, for administrators of
-- the whole system only) and the deliveries that exhausted their attempts (docs/NOTIFICATIONS.md).

CREATE TABLE webhooks (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL,
  url              text NOT NULL,
  jurisdiction_id  text REFERENCES jurisdictions (id),
  classes          text[] NOT NULL CHECK (cardinality(classes) > 0),
  -- The HMAC key of the signatures: kept as is because signing needs it; shown once, never returned or logged again.
  secret           text NOT NULL,
  enabled          boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_enabled ON webhooks (jurisdiction_id) WHERE enabled;

CREATE TABLE webhook_dead_letters (
  id            bigserial PRIMARY KEY,
  webhook_id    bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  -- Stable across retries (X-Firewatch-Delivery): receivers drop a delivery they already have.
  delivery_id   text NOT NULL UNIQUE,
  body          text NOT NULL,
  attempts      integer NOT NULL,
  last_status   integer,
  last_error    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dead_letters_webhook ON webhook_dead_letters (webhook_id, id);
