/**
 * A city-scale registry written straight into PostgreSQL with generate_series (seconds, not the hours the API would
 * take): one city, 10 districts of 10 streets, `units` units spread over the streets, 3 devices per unit (every tenth
 * offline), `alerts` resolved alerts and, per unit, an open trouble alert (every 7th unit) and an open fire alert
 * (every 50th), and a score for every unit with many ties (score = i × 37 mod 101). Used by
 * test/scale-read-paths.test.ts and bench/read-paths.ts.
 */
import type pg from 'pg'

export const SCALE_CITY = 'sc-city'
/** The district holding every unit whose number ends in 0–9 of its hundred (a tenth of the city). */
export const scaleDistrict = (d: number) => `sc-d${d}`
export const scaleUnit = (i: number) => `sc-u${String(i).padStart(6, '0')}`

export interface CityScale {
  units: number
  /** Resolved alerts, spread over the units; the open ones come on top. */
  alerts: number
}

export async function seedCity(db: Pick<pg.Pool, 'query'>, { units, alerts }: CityScale): Promise<void> {
  await db.query(`
    INSERT INTO jurisdictions (id, parent_id, name, level, ancestors) VALUES ('${SCALE_CITY}', NULL, 'Scale City', 'city', ARRAY['${SCALE_CITY}']);
    INSERT INTO jurisdictions (id, parent_id, name, level, ancestors)
      SELECT 'sc-d' || d, '${SCALE_CITY}', 'District ' || d, 'district', ARRAY['${SCALE_CITY}', 'sc-d' || d] FROM generate_series(0, 9) d;
    INSERT INTO jurisdictions (id, parent_id, name, level, ancestors)
      SELECT format('sc-d%s-s%s', d, s), 'sc-d' || d, format('Street %s-%s', d, s), 'street', ARRAY['${SCALE_CITY}', 'sc-d' || d, format('sc-d%s-s%s', d, s)]
        FROM generate_series(0, 9) d, generate_series(0, 9) s`)
  // Unit i lives in street (i mod 100): district (i mod 100) / 10.
  await db.query(
    `INSERT INTO units (id, jurisdiction_id, name, address, category, contact_name, contact_phone)
     SELECT 'sc-u' || lpad(i::text, 6, '0'), format('sc-d%s-s%s', (i % 100) / 10, i % 10), 'Unit ' || i, i || ' Scale Road',
            (ARRAY['high_risk', 'key', 'general', 'general'])[i % 4 + 1], 'Duty Manager', '0571-0000000'
       FROM generate_series(0, $1 - 1) i`,
    [units]
  )
  await db.query(
    `INSERT INTO devices (id, unit_id, kind, protocol, profile, online)
     SELECT 'sc-u' || lpad(i::text, 6, '0') || '-d' || k, 'sc-u' || lpad(i::text, 6, '0'), 'smoke_detector', 'mqtt', 'smoke_detector', (i * 3 + k) % 10 <> 0
       FROM generate_series(0, $1 - 1) i, generate_series(0, 2) k`,
    [units]
  )
  // History: resolved alerts, a third of them false fire alarms.
  await db.query(
    `INSERT INTO alerts (unit_id, device_id, rule_id, class, trouble_type, severity, title, status, active, first_seen, last_seen,
                         acknowledged_at, resolved_at, resolved_by, disposition)
     SELECT 'sc-u' || lpad((n % $1)::text, 6, '0'), 'sc-u' || lpad((n % $1)::text, 6, '0') || '-d' || (n % 3),
            (ARRAY['fire', 'supervisory', 'trouble'])[n % 3 + 1], (ARRAY['fire', 'supervisory', 'trouble'])[n % 3 + 1],
            CASE WHEN n % 3 = 2 THEN 'fault' END, 'minor', 'history', 'resolved', false, t, t, t, t + interval '5 minutes', 'seed',
            CASE WHEN n % 3 = 0 THEN 'false_alarm' ELSE 'restored' END
       FROM generate_series(0, $2 - 1) n, LATERAL (SELECT now() - (n % 100000) * interval '1 minute' AS t) x`,
    [units, alerts]
  )
  await db.query(
    `INSERT INTO alerts (unit_id, device_id, rule_id, class, trouble_type, severity, title, first_seen, last_seen)
     SELECT 'sc-u' || lpad(i::text, 6, '0'), 'sc-u' || lpad(i::text, 6, '0') || '-d0', 'scale-trouble', 'trouble', 'fault', 'minor', 'open trouble', now(), now()
       FROM generate_series(0, $1 - 1, 7) i;
     INSERT INTO alerts (unit_id, device_id, rule_id, class, severity, title, first_seen, last_seen, verification)
     SELECT 'sc-u' || lpad(i::text, 6, '0'), 'sc-u' || lpad(i::text, 6, '0') || '-d1', 'scale-fire', 'fire', 'critical', 'open fire', now(), now(), 'single_source'
       FROM generate_series(0, $1 - 1, 50) i`.replace(/\$1/g, String(Math.trunc(units)))
  )
  await db.query(
    `INSERT INTO unit_risk (unit_id, score, level, factors, computed_at)
     SELECT 'sc-u' || lpad(i::text, 6, '0'), s, CASE WHEN s >= 75 THEN 'critical' WHEN s >= 50 THEN 'high' WHEN s >= 25 THEN 'medium' ELSE 'low' END,
            '[]', now()
       FROM generate_series(0, $1 - 1) i, LATERAL (SELECT (i * 37) % 101 AS s) x`,
    [units]
  )
  await db.query('ANALYZE')
}
