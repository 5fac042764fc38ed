/**
 * Units ranked by their latest risk score, with their open alerts and offline devices: one query for a page of a
 * whole jurisdiction instead of one `GET /units/{id}/risk` per unit.
 *
 * Order: score descending, then unit id; units never scored last, by unit id. A page is read by keyset (the key of the
 * previous page's last unit) from the index `unit_risk_rank` (migration 060), and open alerts and devices are counted
 * for the page's units only, through the partial index of open alerts: the work of a call grows with `limit`, not with
 * the city's units or its alert history (docs/BENCHMARKS.md, "Read paths"). `total` is one count of the units in scope.
 *
 * Units never scored yet are scored first (a few per call, waited for a second at most), as `GET /units/{id}/risk`
 * would, so the ranking covers them; only on a first page, so that walking on through the pages does not move units
 * under the reader.
 */
import type { RiskService } from './risk.js'
import type { RankedUnit } from '../../schemas/risk-ranking.js'

/** Units scored on demand by one call at most; any others rank last (score null) until a later call. */
const SCORE_ON_DEMAND = 50
/**
 * How long a call waits for those scores. Each reads InfluxDB (10 s timeout) three at a time: with InfluxDB slow or down,
 * waiting for 50 would hold the console's page for minutes. Scores not done by then keep computing and show next time.
 */
const SCORE_WAIT_MS = 1000

/** Where a page starts: right after this unit (score null: in the tail of units never scored). */
export interface RankingKey {
  score: number | null
  unitId: string
}

export interface RankingQuery {
  jurisdictionId?: string | undefined
  limit: number
  /** Deprecated: units skipped (read and dropped: its cost grows with it). */
  offset: number
  after?: RankingKey | undefined
}

// $1 the caller's scope (null: all), $2 the jurisdiction asked for (null: all).
const IN_SCOPE = `($1::text IS NULL OR $1 = ANY (j.ancestors)) AND ($2::text IS NULL OR $2 = ANY (j.ancestors))`
const UNITS_IN_SCOPE = `units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE ${IN_SCOPE}`

const UNSCORED_SQL = `
SELECT u.id FROM ${UNITS_IN_SCOPE} AND NOT EXISTS (SELECT 1 FROM unit_risk r WHERE r.unit_id = u.id) LIMIT $3`

const TOTAL_SQL = `SELECT count(*)::int AS n FROM ${UNITS_IN_SCOPE}`

/**
 * $3 score and $4 unit id of the key to start after (both null: from the top; score null: in the unscored tail),
 * $5 rows to read (limit + offset + 1: one more tells whether another page follows), $6 offset.
 * node-postgres sends it unnamed, so PostgreSQL plans it for these values: the null tests fold away and the row
 * comparison becomes the index condition. Each branch stops after $5 rows; the second runs only when the first ran out.
 */
export const RANKING_SQL = `
WITH page AS (
  (SELECT r.unit_id, r.score FROM unit_risk r JOIN units u ON u.id = r.unit_id JOIN jurisdictions j ON j.id = u.jurisdiction_id
    WHERE ${IN_SCOPE} AND ($4::text IS NULL OR ($3::int IS NOT NULL AND (-r.score, r.unit_id) > (-$3::int, $4::text)))
    ORDER BY -r.score, r.unit_id LIMIT $5)
  UNION ALL
  (SELECT u.id, NULL FROM ${UNITS_IN_SCOPE}
      AND NOT EXISTS (SELECT 1 FROM unit_risk r WHERE r.unit_id = u.id) AND ($3::int IS NOT NULL OR $4::text IS NULL OR u.id > $4::text)
    ORDER BY u.id LIMIT $5)
  LIMIT $5
)
SELECT u.id, u.name, u.address, u.category, u.jurisdiction_id, r.score, r.level, r.computed_at,
       a.open_alerts, a.open_fire, d.total, d.offline
FROM page p JOIN units u ON u.id = p.unit_id LEFT JOIN unit_risk r ON r.unit_id = p.unit_id
CROSS JOIN LATERAL (
  SELECT count(*)::int AS open_alerts, count(*) FILTER (WHERE class = 'fire')::int AS open_fire
  FROM alerts WHERE unit_id = p.unit_id AND status <> 'resolved'
) a
CROSS JOIN LATERAL (
  SELECT count(*)::int AS total, count(*) FILTER (WHERE NOT online)::int AS offline FROM devices WHERE unit_id = p.unit_id
) d
ORDER BY p.score IS NULL, -p.score, p.unit_id
OFFSET $6`

/** The parameters of {@link RANKING_SQL} (exported for the test that EXPLAINs it). */
export function rankingArgs(q: RankingQuery, scope: string | null): unknown[] {
  return [scope, q.jurisdictionId ?? null, q.after?.score ?? null, q.after?.unitId ?? null, q.offset + q.limit + 1, q.offset]
}

type Row = Record<string, unknown>

const rankedOf = (r: Row): RankedUnit => ({
  unitId: r.id as string,
  name: r.name as string,
  address: r.address as string,
  category: r.category as RankedUnit['category'],
  jurisdictionId: r.jurisdiction_id as string,
  score: (r.score as number | null) ?? null,
  level: (r.level as RankedUnit['level']) ?? null,
  computedAt: r.computed_at ? (r.computed_at as Date).toISOString() : null,
  openAlerts: r.open_alerts as number,
  openFireAlerts: r.open_fire as number,
  devices: r.total as number,
  offlineDevices: r.offline as number
})

export async function rankUnits(
  risk: RiskService,
  q: RankingQuery,
  scope: string | null
): Promise<{ items: RankedUnit[]; total: number; next: RankingKey | null }> {
  const { pool } = risk.deps
  const scopeArgs = [scope, q.jurisdictionId ?? null]
  if (!q.after) await scoreUnscored(risk, scopeArgs)
  const [page, total] = await Promise.all([pool.query(RANKING_SQL, rankingArgs(q, scope)), pool.query<{ n: number }>(TOTAL_SQL, scopeArgs)])
  const items = (page.rows as Row[]).slice(0, q.limit).map(rankedOf)
  const last = items.at(-1)
  return {
    items,
    total: total.rows[0]!.n,
    next: page.rows.length > q.limit && last ? { score: last.score, unitId: last.unitId } : null
  }
}

async function scoreUnscored(risk: RiskService, scopeArgs: unknown[]): Promise<void> {
  const unscored = await risk.deps.pool.query<{ id: string }>(UNSCORED_SQL, [...scopeArgs, SCORE_ON_DEMAND])
  // schedule() never rejects and runs a few units at once, sharing the pool with the rule engine.
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(unscored.rows.map(({ id }) => risk.schedule(id))),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, SCORE_WAIT_MS)))
  ])
  clearTimeout(timer)
}
