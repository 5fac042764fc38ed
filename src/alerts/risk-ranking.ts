/**
 * Units ranked by their latest risk score, with their open alerts and offline devices: one query for a whole
 * jurisdiction instead of one `GET /units/{id}/risk` per unit. Units never scored yet are scored first (a few per
 * call, waited for a second at most), as `GET /units/{id}/risk` would, so the ranking covers them.
 */
import type { RiskService } from './risk.js'
import type { RankedUnit, RiskRankingQuery } from '../../schemas/risk-ranking.js'

/** Units scored on demand by one call at most; any others rank last (score null) until a later call. */
const SCORE_ON_DEMAND = 50
/**
 * How long a call waits for those scores. Each reads InfluxDB (10 s timeout) three at a time: with InfluxDB slow or down,
 * waiting for 50 would hold the console's page for minutes. Scores not done by then keep computing and show next time.
 */
const SCORE_WAIT_MS = 1000

// $1 the caller's scope (null: all), $2 the jurisdiction asked for (null: all); then $3 limit, $4 offset.
const IN_SCOPE = `
WHERE ($1::text IS NULL OR $1 = ANY (j.ancestors)) AND ($2::text IS NULL OR $2 = ANY (j.ancestors))`

const UNSCORED_SQL = `
SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id ${IN_SCOPE}
AND NOT EXISTS (SELECT 1 FROM unit_risk r WHERE r.unit_id = u.id) LIMIT $3`

const RANKING_SQL = `
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
${IN_SCOPE}
ORDER BY r.score DESC NULLS LAST, a.open_fire DESC, a.open_alerts DESC, u.name, u.id
LIMIT $3 OFFSET $4`

type Row = Record<string, unknown>

export async function rankUnits(risk: RiskService, q: RiskRankingQuery, scope: string | null): Promise<{ items: RankedUnit[]; total: number }> {
  const { pool } = risk.deps
  const scopeArgs = [scope, q.jurisdictionId ?? null]
  const unscored = await pool.query<{ id: string }>(UNSCORED_SQL, [...scopeArgs, SCORE_ON_DEMAND])
  // schedule() never rejects and runs a few units at once, sharing the pool with the rule engine.
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(unscored.rows.map(({ id }) => risk.schedule(id))),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, SCORE_WAIT_MS)))
  ])
  clearTimeout(timer)
  const { rows } = await pool.query(RANKING_SQL, [...scopeArgs, q.limit, q.offset])
  return {
    items: (rows as Row[]).map((r) => ({
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
    })),
    total: Number((rows[0] as Row | undefined)?.total_units ?? 0)
  }
}
