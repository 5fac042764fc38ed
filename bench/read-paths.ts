/**
 * The read paths that grow with the city, timed against PostgreSQL: the risk ranking (GET /api/v1/risk) as it was
 * (every unit's alerts and devices counted, then sorted) and as it is (a keyset page off the ranking index), and a
 * draw's candidates as one jsonb array (as they were) against a page of their rows (as they are). Each query runs
 * once to warm up, then `--runs` times; the median and the slowest are printed, in ms, as the client saw them.
 *
 *   npx tsx bench/read-paths.ts [--units 50000] [--alerts 300000] [--runs 9]
 *
 * Uses a database of its own (fw_bench_read_paths), dropped at the end. docs/BENCHMARKS.md, "Read paths".
 */
import { parseArgs } from 'node:util'
import pg from 'pg'
import { pino } from 'pino'
import { connectPostgres, migrate } from '../src/store/postgres.js'
import { RANKING_SQL, rankingArgs } from '../src/alerts/risk-ranking.js'
import { SCALE_CITY, scaleDistrict, scaleUnit, seedCity } from '../test/helpers/city-scale.js'

const { values } = parseArgs({ options: { units: { type: 'string', default: '50000' }, alerts: { type: 'string', default: '300000' }, runs: { type: 'string', default: '9' } } })
const units = Number(values.units)
const alerts = Number(values.alerts)
const runs = Number(values.runs)
const DB = 'fw_bench_read_paths'
const PG = 'postgres://postgres@127.0.0.1:5432'

/** The ranking before migration 060: counts for every unit in scope, sorted, then the page. Kept here as the baseline. */
const OLD_RANKING_SQL = `
SELECT u.id, u.name, u.address, u.category, u.jurisdiction_id, r.score, r.level, r.computed_at,
       a.open_alerts, a.open_fire, d.total, d.offline, count(*) OVER () AS total_units
FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id LEFT JOIN unit_risk r ON r.unit_id = u.id
CROSS JOIN LATERAL (
  SELECT count(*)::int AS open_alerts, count(*) FILTER (WHERE class = 'fire')::int AS open_fire
  FROM alerts WHERE unit_id = u.id AND status <> 'resolved'
) a
CROSS JOIN LATERAL (
  SELECT count(*)::int AS total, count(*) FILTER (WHERE NOT online)::int AS offline FROM devices WHERE unit_id = u.id
) d
WHERE ($1::text IS NULL OR $1 = ANY (j.ancestors)) AND ($2::text IS NULL OR $2 = ANY (j.ancestors))
ORDER BY r.score DESC NULLS LAST, a.open_fire DESC, a.open_alerts DESC, u.name, u.id
LIMIT $3 OFFSET $4`
const TOTAL_SQL = `SELECT count(*)::int FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id
  WHERE ($1::text IS NULL OR $1 = ANY (j.ancestors)) AND ($2::text IS NULL OR $2 = ANY (j.ancestors))`

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: `${PG}/postgres` })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

async function time(pool: pg.Pool, label: string, sql: string, args: unknown[]): Promise<void> {
  await pool.query(sql, args)
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint()
    await pool.query(sql, args)
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  ms.sort((a, b) => a - b)
  console.log(`| ${label} | ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} | ${ms.at(-1)!.toFixed(1)} |`)
}

await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
const log = pino({ level: 'warn' })
const pool = await connectPostgres(`${PG}/${DB}`, log, 5000)
try {
  await migrate(pool, log)
  const t0 = Date.now()
  await seedCity(pool, { units, alerts })
  // A draw of the whole city, candidates in both shapes: rows (now) and one jsonb array (before migration 061).
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO inspection_draws (jurisdiction_id, seed, seed_generated, algorithm, targets_requested, inspectors_per_target, weights, candidate_count, targets, created_by)
     VALUES ($1, 'bench', false, 'bench', 1, 1, '{}', $2, '[]', 'bench') RETURNING id`,
    [SCALE_CITY, units]
  )
  const drawId = rows[0]!.id
  await pool.query(
    `INSERT INTO inspection_draw_candidates (draw_id, position, unit_id, risk_level, dishonest, active_entries, weight)
     SELECT $1, i, 'sc-u' || lpad(i::text, 6, '0'), 'low', false, 0, 1 FROM generate_series(0, $2 - 1) i`,
    [drawId, units]
  )
  await pool.query(`CREATE TABLE old_draws AS SELECT $1::bigint AS id, jsonb_agg(jsonb_build_object('unitId', unit_id, 'riskLevel', risk_level,
    'dishonest', dishonest, 'activeEntries', active_entries, 'weight', weight) ORDER BY position) AS candidates
    FROM inspection_draw_candidates WHERE draw_id = $1`, [drawId])
  await pool.query('ANALYZE')
  console.error(`seeded ${units} units, ${alerts} resolved alerts in ${Date.now() - t0} ms`)

  const page = (limit: number, jurisdictionId?: string, after?: { score: number; unitId: string }) =>
    rankingArgs({ limit, offset: 0, jurisdictionId, after }, null)
  console.log('| query | median ms | slowest ms |\n| --- | ---: | ---: |')
  await time(pool, 'ranking before, city, limit 100', OLD_RANKING_SQL, [null, null, 100, 0])
  await time(pool, 'ranking before, one district, limit 100', OLD_RANKING_SQL, [null, scaleDistrict(3), 100, 0])
  await time(pool, 'ranking now, city, first page of 100', RANKING_SQL, page(100))
  await time(pool, 'ranking now, city, page of 100 after a cursor deep in a tie', RANKING_SQL, page(100, undefined, { score: 7, unitId: scaleUnit(Math.floor(units * 0.9)) }))
  await time(pool, 'ranking now, city, first page of 1000', RANKING_SQL, page(1000))
  await time(pool, 'ranking now, one district, first page of 100', RANKING_SQL, page(100, scaleDistrict(3)))
  await time(pool, 'ranking now, one street, first page of 100', RANKING_SQL, page(100, 'sc-d3-s4'))
  await time(pool, 'ranking now, total of the city (every call)', TOTAL_SQL, [null, null])
  await time(pool, 'draw candidates before, one jsonb array', 'SELECT candidates FROM old_draws WHERE id = $1', [drawId])
  await time(pool, 'draw candidates now, page of 1000 after position 25,000', 'SELECT * FROM inspection_draw_candidates WHERE draw_id = $1 AND position > $2 ORDER BY position LIMIT $3', [drawId, 25_000, 1001])
  await time(pool, 'draw candidates now, all (replay)', 'SELECT * FROM inspection_draw_candidates WHERE draw_id = $1 ORDER BY position', [drawId])
} finally {
  await pool.end()
  await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
}
