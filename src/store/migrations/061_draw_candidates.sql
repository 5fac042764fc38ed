-- A draw's candidates, one row each, instead of one jsonb array in the draw's row: at city scale (50,000 units) that
-- array is megabytes, read whole for every view of the draw. Rows let GET …/draws/{id}/candidates read one page by
-- position, and the replay and the public list read them all in order (src/inspections/draw-repository.ts).
CREATE TABLE inspection_draw_candidates (
  draw_id         bigint NOT NULL REFERENCES inspection_draws (id),
  -- 0-based place in the order drawn from (unit id, code-point order)
  position        integer NOT NULL CHECK (position >= 0),
  unit_id         text NOT NULL,
  -- the inputs of the weight as they were at the draw; null: no risk score yet (weighs as low)
  risk_level      text CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
  dishonest       boolean NOT NULL,
  active_entries  integer NOT NULL,
  -- products of powers of two and halves of them: exact in double precision, as they were in the jsonb array
  weight          double precision NOT NULL,
  PRIMARY KEY (draw_id, position)
);

INSERT INTO inspection_draw_candidates (draw_id, position, unit_id, risk_level, dishonest, active_entries, weight)
SELECT d.id, e.ord - 1, e.c->>'unitId', e.c->>'riskLevel', (e.c->>'dishonest')::boolean, (e.c->>'activeEntries')::integer,
       (e.c->>'weight')::double precision
  FROM inspection_draws d, jsonb_array_elements(d.candidates) WITH ORDINALITY AS e(c, ord);

ALTER TABLE inspection_draws ADD COLUMN candidate_count integer;
UPDATE inspection_draws SET candidate_count = jsonb_array_length(candidates);
ALTER TABLE inspection_draws ALTER COLUMN candidate_count SET NOT NULL;
ALTER TABLE inspection_draws DROP COLUMN candidates;
