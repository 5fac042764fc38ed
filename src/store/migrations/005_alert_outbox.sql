-- Alert changes are dispatched (live message, escalation timer, notification, risk) after their transaction commits;
-- a change whose dispatch did not complete (a crash, Redis away) is found here and dispatched again.
ALTER TABLE alert_transitions ADD COLUMN dispatched_at timestamptz;
UPDATE alert_transitions SET dispatched_at = at;
CREATE INDEX alert_transitions_undispatched ON alert_transitions (id) WHERE dispatched_at IS NULL;

-- The silence sweep reads only devices not seen for a while.
CREATE INDEX devices_seen ON devices ((coalesce(last_seen_at, created_at)));

-- The false-alarm count per unit over the last day.
CREATE INDEX alerts_false_alarms ON alerts (resolved_at, unit_id) WHERE class = 'fire' AND disposition = 'false_alarm';
