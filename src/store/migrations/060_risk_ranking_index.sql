-- The risk ranking (GET /api/v1/risk, src/alerts/risk-ranking.ts) pages by the keyset (score descending, unit id):
-- this index gives it in that order, so a page reads `limit` entries of it and counts alerts and devices for those
-- units only, instead of counting for every unit of the city and sorting them all (docs/BENCHMARKS.md, "Read paths").
-- Negating the score lets one row comparison, (-score, unit_id) > (-s, u), be the index condition of the next page.
CREATE INDEX unit_risk_rank ON unit_risk ((-score), unit_id);
