-- Follow-up cases (enforcement: a risk warning becomes a case for an inspector, with a rectification deadline) and
-- the units' credit records. Scope comes through the unit (units.jurisdiction_id), as for alerts.

CREATE TABLE cases (
  id           bigserial PRIMARY KEY,
  unit_id      text NOT NULL REFERENCES units (id),
  -- The follow-up policy that opened it (rules/followup.yaml), NULL for a case opened by hand.
  policy       text,
  status       text NOT NULL DEFAULT 'open'
               CHECK (status IN ('open', 'assigned', 'rectification_submitted', 'verified', 'closed', 'overdue')),
  -- major: a major fire hazard (重大火灾隐患), which goes on the credit record when left past its deadline.
  severity     text NOT NULL CHECK (severity IN ('major', 'general')),
  title        text NOT NULL,
  description  text NOT NULL DEFAULT '',
  opened_at    timestamptz NOT NULL DEFAULT now(),
  -- 'system' for a policy, otherwise the user who opened it.
  opened_by    text NOT NULL,
  -- The rectification deadline.
  deadline     timestamptz NOT NULL,
  -- The inspector's user id; NULL while unassigned (an unassigned case stays 'open', visible to admins).
  assignee     text REFERENCES users (id),
  assigned_at  timestamptz,
  submitted_at timestamptz,
  verified_at  timestamptz,
  verified_by  text,
  closed_at    timestamptz,
  -- Set when the deadline passed unverified; kept afterwards, also once the case is closed.
  overdue_at   timestamptz,
  -- The latest evidence computed from the devices: [{check, ok, detail}].
  evidence     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(evidence) = 'array'),
  evidence_at  timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
  CHECK (status <> 'overdue' OR overdue_at IS NOT NULL)
);
-- One open case per (unit, policy): a recurrence links its alert to the existing case.
CREATE UNIQUE INDEX cases_one_open ON cases (unit_id, policy) WHERE policy IS NOT NULL AND status <> 'closed';
CREATE INDEX cases_unit_opened ON cases (unit_id, opened_at);
CREATE INDEX cases_status ON cases (status);
CREATE INDEX cases_assignee ON cases (assignee) WHERE assignee IS NOT NULL;

CREATE TABLE case_alerts (
  case_id    bigint NOT NULL REFERENCES cases (id),
  alert_id   bigint NOT NULL REFERENCES alerts (id),
  linked_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (case_id, alert_id)
);
CREATE INDEX case_alerts_alert ON case_alerts (alert_id);

CREATE TABLE case_transitions (
  id           bigserial PRIMARY KEY,
  case_id      bigint NOT NULL REFERENCES cases (id),
  at           timestamptz NOT NULL DEFAULT now(),
  -- opened, alert_linked, assigned, submitted, verified, rejected, closed, overdue
  action       text NOT NULL,
  -- 'system' for the server's own steps, otherwise the user's id.
  actor        text NOT NULL,
  comment      text,
  from_status  text,
  to_status    text NOT NULL,
  -- References to files kept elsewhere (document system, object store): [{name, ref}]; no file is stored here.
  attachments  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attachments) = 'array'),
  -- Step data: the evidence shown at verification, the assignee chosen, the alert linked.
  data         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_transitions_case ON case_transitions (case_id, id);

CREATE TABLE credit_entries (
  id             bigserial PRIMARY KEY,
  unit_id        text NOT NULL REFERENCES units (id),
  kind           text NOT NULL CHECK (kind IN ('overdue_major', 'refused_rectification', 'repeated_violations')),
  points         integer NOT NULL CHECK (points > 0),
  reason         text NOT NULL,
  case_id        bigint REFERENCES cases (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- Credit repair marks an entry repaired; the entry itself is never deleted (history kept).
  repaired_at    timestamptz,
  repair_reason  text,
  CHECK ((repaired_at IS NULL) = (repair_reason IS NULL))
);
CREATE INDEX credit_entries_unit ON credit_entries (unit_id, created_at);
CREATE INDEX credit_entries_active ON credit_entries (unit_id) WHERE repaired_at IS NULL;
-- A case goes overdue once: one overdue entry per case.
CREATE UNIQUE INDEX credit_entries_one_overdue ON credit_entries (case_id) WHERE kind = 'overdue_major';

-- The dishonest threshold in force, written from the follow-up policy at start, so that every reader of the
-- standing (draw weights, reports) applies the same number. One row.
CREATE TABLE credit_policy (
  id                boolean PRIMARY KEY DEFAULT true CHECK (id),
  dishonest_points  integer NOT NULL CHECK (dishonest_points > 0),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- The default of rules/followup.yaml (credit.dishonestPoints).
INSERT INTO credit_policy (dishonest_points) VALUES (10);
