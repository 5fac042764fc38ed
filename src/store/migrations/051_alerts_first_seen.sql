-- Reports select a jurisdiction's alerts by when they were first seen (src/reports/summary.ts).
CREATE INDEX alerts_unit_first_seen ON alerts (unit_id, first_seen);
