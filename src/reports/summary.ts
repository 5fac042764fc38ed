/**
 * The summary report of a jurisdiction subtree over a period [from, to), every figure an aggregate computed by
 * PostgreSQL (no alert is loaded into the process). Definitions: docs/INSPECTIONS.md, "Reports".
 *
 * The alerts counted are those first seen in the period; their disposition and timings are as they stand when the
 * report is made. Test alerts (class `test`, raised by devices in test mode, or any alert disposed of as `test`) are
 * kept out of dispositions' false-alarm rate and response times: a drill is neither an alarm nor a response.
 */
import type pg from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import { ALERT_CLASSES, OPERATOR_DISPOSITIONS, RISK_LEVELS } from '../../schemas/alerts.js'
import type { Summary } from '../../schemas/reports.js'

/** Case severities (src/store/migrations/040_cases.sql): a major fire hazard (重大火灾隐患) or a general one. */
const CASE_SEVERITIES = ['major', 'general'] as const

const SUBTREE_UNITS = `SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE $1 = ANY (j.ancestors)`
/** The period's alerts: $1 jurisdiction, $2 from, $3 to. */
const PERIOD = `WITH p AS (SELECT * FROM alerts WHERE unit_id IN (${SUBTREE_UNITS}) AND first_seen >= $2 AND first_seen < $3)`
const NOT_TEST = `class <> 'test' AND disposition IS DISTINCT FROM 'test'`

const BY_CLASS = `${PERIOD} SELECT class AS key, count(*)::int AS n FROM p GROUP BY class`
const BY_DISPOSITION = `${PERIOD} SELECT coalesce(disposition, 'unresolved') AS key, count(*)::int AS n FROM p WHERE class <> 'test' GROUP BY 1`
// GROUPING SETS: one row per unit and the overall row (unit_id NULL) in one pass.
const FALSE_ALARMS = `${PERIOD}
SELECT unit_id, count(*) FILTER (WHERE disposition = 'false_alarm')::int AS false_alarms, count(*)::int AS resolved_fire
  FROM p WHERE class = 'fire' AND status = 'resolved' AND ${NOT_TEST}
 GROUP BY GROUPING SETS ((unit_id), ()) ORDER BY unit_id NULLS FIRST`
const RESPONSE_TIMES = `${PERIOD}
SELECT class, count(acknowledged_at)::int AS acknowledged,
       round(avg(extract(epoch FROM acknowledged_at - first_seen)), 1)::float8 AS ack_s,
       count(resolved_at)::int AS resolved,
       round(avg(extract(epoch FROM resolved_at - first_seen)), 1)::float8 AS resolve_s
  FROM p WHERE ${NOT_TEST}
 GROUP BY GROUPING SETS ((class), ())`
// Cases (src/followup): opened, gone overdue and closed in the period, whenever the case began.
const CASES = `
SELECT severity,
       count(*) FILTER (WHERE opened_at >= $2 AND opened_at < $3)::int AS opened,
       count(*) FILTER (WHERE overdue_at >= $2 AND overdue_at < $3)::int AS overdue,
       count(*) FILTER (WHERE closed_at >= $2 AND closed_at < $3)::int AS closed
  FROM cases WHERE unit_id IN (${SUBTREE_UNITS}) AND opened_at < $3
 GROUP BY GROUPING SETS ((severity), ())`
const UNITS_BY_RISK = `SELECT coalesce(r.level, 'unscored') AS key, count(*)::int AS n FROM (${SUBTREE_UNITS}) s LEFT JOIN unit_risk r ON r.unit_id = s.id GROUP BY 1`

const rate = (falseAlarms: number, resolved: number) => (resolved === 0 ? null : Math.round((falseAlarms / resolved) * 10_000) / 10_000)

/** Every key listed, zero when none: a report reads the same whatever happened. */
const counts = (keys: readonly string[], rows: { key: string; n: number }[]) => {
  const found = new Map(rows.map((r) => [r.key, r.n]))
  return keys.map((key) => ({ key, n: found.get(key) ?? 0 }))
}

export class ReportService {
  constructor(private readonly pool: Pool) {}

  async jurisdictionExists(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM jurisdictions WHERE id = $1', [id])
    return (rowCount ?? 0) > 0
  }

  async summary(jurisdictionId: string, from: Date, to: Date): Promise<Summary> {
    // One snapshot: the sections agree with one another.
    return withTransaction(this.pool, async (client) => {
      const args = [jurisdictionId, from, to]
      const q = <R extends pg.QueryResultRow>(sql: string, a: unknown[] = args) => client.query<R>(sql, a).then((r) => r.rows)
      const byClass = await q<{ key: string; n: number }>(BY_CLASS)
      const byDisposition = await q<{ key: string; n: number }>(BY_DISPOSITION)
      const falseAlarms = await q<{ unit_id: string | null; false_alarms: number; resolved_fire: number }>(FALSE_ALARMS)
      const times = await q<{ class: string | null; acknowledged: number; ack_s: number | null; resolved: number; resolve_s: number | null }>(RESPONSE_TIMES)
      const risk = await q<{ key: string; n: number }>(UNITS_BY_RISK, [jurisdictionId])
      const cases = await q<{ severity: string | null; opened: number; overdue: number; closed: number }>(CASES)

      const overall = falseAlarms.find((r) => r.unit_id === null)
      const timeOf = (cls: string | null) => times.find((r) => r.class === cls)
      return {
        jurisdictionId,
        from: from.toISOString(),
        to: to.toISOString(),
        generatedAt: new Date().toISOString(),
        alertsByClass: counts(ALERT_CLASSES, byClass).map(({ key, n }) => ({ class: key, count: n })),
        alertsByDisposition: counts([...OPERATOR_DISPOSITIONS, 'restored', 'unresolved'], byDisposition).map(({ key, n }) => ({ disposition: key, count: n })),
        falseAlarms: {
          overall: { falseAlarms: overall?.false_alarms ?? 0, resolvedFire: overall?.resolved_fire ?? 0, rate: overall ? rate(overall.false_alarms, overall.resolved_fire) : null },
          units: falseAlarms
            .filter((r) => r.unit_id !== null)
            .map((r) => ({ unitId: r.unit_id!, falseAlarms: r.false_alarms, resolvedFire: r.resolved_fire, rate: rate(r.false_alarms, r.resolved_fire) }))
        },
        responseTimes: [...ALERT_CLASSES.filter((c) => c !== 'test'), null].map((cls) => {
          const r = timeOf(cls)
          return {
            class: cls ?? 'all',
            acknowledged: r?.acknowledged ?? 0,
            meanSecondsToAcknowledge: r?.ack_s ?? null,
            resolved: r?.resolved ?? 0,
            meanSecondsToResolve: r?.resolve_s ?? null
          }
        }),
        unitsByRisk: counts([...RISK_LEVELS, 'unscored'], risk).map(({ key, n }) => ({ level: key, count: n })),
        cases: [...CASE_SEVERITIES, null].map((severity) => {
          const r = cases.find((c) => c.severity === severity)
          return { severity: severity ?? 'all', opened: r?.opened ?? 0, overdue: r?.overdue ?? 0, closed: r?.closed ?? 0 }
        })
      }
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  }
}
