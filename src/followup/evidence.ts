/**
 * Rectification evidence from the devices (rules/followup/policy.yaml `evidence`): the case's alerts resolved or
 * cleared, its devices online again, no isolation left in the unit, sprinkler pressure within limits for the hold
 * time. Each item is {check, ok, detail}; the inspector sees them and decides — evidence informs, it does not verify.
 */
import type { Pool } from '../store/postgres.js'
import { MEASUREMENTS, quoteIdent, quoteString, type InfluxSeries, type InfluxStore } from '../store/influx.js'
import type { Evidence } from '../../schemas/cases.js'
import type { FollowUpPolicy } from './policy.js'

type Row = Record<string, unknown>
/** A database nobody wrote to yet: no readings, not a failure. */
const noDatabase = (err: unknown) => /database not found/.test((err as Error).message)

export class EvidenceCollector {
  constructor(
    private readonly pool: Pool,
    private readonly store: InfluxStore,
    private readonly policy: FollowUpPolicy['evidence']
  ) {}

  async collect(caseId: string, unitId: string, now = Date.now()): Promise<Evidence[]> {
    const { rows: alerts } = await this.pool.query(
      `SELECT a.id, a.status, a.active, a.device_id, a.rule_id FROM case_alerts ca JOIN alerts a ON a.id = ca.alert_id WHERE ca.case_id = $1 ORDER BY a.id`,
      [caseId]
    )
    const { rows: devices } = await this.pool.query('SELECT id, kind, online, last_seen_at FROM devices WHERE unit_id = $1 ORDER BY id', [unitId])
    const { rows: iso } = await this.pool.query("SELECT count(*)::int AS n FROM alerts WHERE unit_id = $1 AND class = 'isolation' AND status <> 'resolved' AND active", [unitId])
    const out: Evidence[] = []

    const open = alerts.filter((a: Row) => a.status !== 'resolved' && a.active)
    out.push({
      check: 'alerts_resolved',
      ok: open.length === 0,
      detail: alerts.length === 0 ? 'no alert linked' : open.length === 0 ? `all ${alerts.length} linked alerts resolved or cleared` : `still active: alert ${open.map((a: Row) => String(a.id)).join(', ')}`
    })

    // The devices of the linked alerts; a case without device alerts looks at every device of the unit.
    const linked = new Set(alerts.map((a: Row) => a.device_id as string).filter(Boolean))
    const watched = devices.filter((d: Row) => linked.size === 0 || linked.has(d.id as string))
    const offline = watched.filter((d: Row) => !d.online)
    out.push({
      check: 'devices_online',
      ok: offline.length === 0,
      detail:
        watched.length === 0
          ? 'no device to check'
          : offline.length === 0
            ? `${watched.length} device(s) online`
            : `offline: ${offline.map((d: Row) => `${String(d.id)} (last seen ${d.last_seen_at instanceof Date ? d.last_seen_at.toISOString() : 'never'})`).join(', ')}`
    })

    const isolations = (iso[0] as { n: number }).n
    out.push({ check: 'isolation_lifted', ok: isolations === 0, detail: isolations === 0 ? 'no active isolation in the unit' : `${isolations} isolation(s) still active` })

    const pressure = watched.filter((d: Row) => d.kind === 'sprinkler_pressure').map((d: Row) => d.id as string)
    if (pressure.length > 0) out.push(await this.pressure(unitId, pressure, now))
    return out
  }

  /**
   * Every reading of the hold window within limits, at least one per device, and the last reading before the window
   * also within limits (otherwise the pressure came back during the window: not held for the whole of it).
   */
  private async pressure(unitId: string, deviceIds: string[], now: number): Promise<Evidence> {
    const { pressureHoldS: holdS, pressureMinMpa: min, pressureMaxMpa: max } = this.policy
    const from = now - holdS * 1000
    const m = quoteIdent(MEASUREMENTS.readings)
    const u = quoteString(unitId)
    let inWindow: InfluxSeries[], before: InfluxSeries[]
    try {
      inWindow = await this.store.query(`SELECT min("pressure_mpa"), max("pressure_mpa"), count("pressure_mpa") FROM ${m} WHERE "unit_id" = ${u} AND time > ${from}ms AND time <= ${now}ms GROUP BY "device_id"`)
      before = await this.store.query(`SELECT last("pressure_mpa") FROM ${m} WHERE "unit_id" = ${u} AND time <= ${from}ms AND time > ${from - 86_400_000}ms GROUP BY "device_id"`)
    } catch (err) {
      if (!noDatabase(err)) return { check: 'pressure_normal', ok: false, detail: `readings unavailable: ${(err as Error).message}` }
      inWindow = before = []
    }
    const problems: string[] = []
    for (const id of deviceIds) {
      const w = inWindow.find((s) => s.tags?.device_id === id)?.values[0]
      const b = before.find((s) => s.tags?.device_id === id)?.values[0]?.[1]
      if (!w || !(Number(w[3]) > 0)) problems.push(`${id}: no reading in the last ${holdS} s`)
      else if (Number(w[1]) < min || Number(w[2]) > max) problems.push(`${id}: ${String(w[1])}–${String(w[2])} MPa in the last ${holdS} s`)
      else if (typeof b === 'number' && (b < min || b > max)) problems.push(`${id}: back within limits less than ${holdS} s ago`)
    }
    return {
      check: 'pressure_normal',
      ok: problems.length === 0,
      detail: problems.length === 0 ? `${deviceIds.length} pressure device(s) within ${min}–${max} MPa for ${holdS} s` : problems.join('; ')
    }
  }
}
