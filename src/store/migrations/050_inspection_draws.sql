-- Random inspections (双随机、一公开): conflicts of interest between inspectors and units, and the draws themselves.
-- A draw keeps everything needed to re-run it: the seed, the candidate list with weights in the order used, and per
-- target the eligible inspectors in the order used (src/inspections/sampler.ts).

CREATE TABLE unit_conflicts (
  unit_id     text NOT NULL REFERENCES units (id),
  -- the inspector who must not be drawn for this unit
  user_id     text NOT NULL REFERENCES users (id),
  reason      text NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (unit_id, user_id)
);

CREATE TABLE inspection_draws (
  id                     bigserial PRIMARY KEY,
  jurisdiction_id        text NOT NULL REFERENCES jurisdictions (id),
  seed                   text NOT NULL,
  -- true when the server generated the seed (crypto.randomBytes), false when the caller gave it
  seed_generated         boolean NOT NULL,
  algorithm              text NOT NULL,
  targets_requested      integer NOT NULL CHECK (targets_requested > 0),
  inspectors_per_target  integer NOT NULL CHECK (inspectors_per_target > 0),
  note                   text,
  -- the weight table in force: {risk: {low: 1, …}, credit: {dishonest: 2, …}}
  weights                jsonb NOT NULL,
  -- [{unitId, riskLevel, dishonest, activeEntries, weight}] in the order drawn from
  candidates             jsonb NOT NULL,
  -- [{unitId, key, inspectors, eligible, shortfall}] in draw order
  targets                jsonb NOT NULL,
  created_by             text NOT NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  published_at           timestamptz,
  published_by           text
);
CREATE INDEX inspection_draws_jurisdiction ON inspection_draws (jurisdiction_id, id DESC);
