/**
 * The unit risk score (weights and levels: risk-score.ts). Its inputs are read from PostgreSQL (alerts, devices,
 * the unit's category) and InfluxDB (the latest sprinkler pressures); the latest score is kept in `unit_risk`, every
 * computed score also as a point of the InfluxDB measurement `unit_risk`, the history.
 * InfluxDB being away never stops a score: the pressure factor then reads "unknown" and the history misses a point.
 */
import type { Pool } from '../store/postgres.js'
import { MEASUREMENTS, Point, quoteIdent, quoteString, type InfluxStore } from '../store/influx.js'
import type { Logger } from '../logger.js'
import { FirewatchError } from '../errors.js'
import type { Alert, RiskLevel, UnitRisk } from '../../schemas/alerts.js'
import { FALSE_ALARM_WINDOW_DAYS, scoreRisk, type RiskInputs, type UnitCategory } from './risk-score.js'

export interface RiskDeps {
  pool: Pool
  store: InfluxStore
  log: Logger
}

export interface RiskPoint {
  /** Epoch milliseconds. */
  ts: number
  score: number
  level: RiskLevel
}

/** Points of one history answer at most: the newest of the range. */
export const HISTORY_LIMIT = 10_000
const DAY_MS = 24 * 3600 * 1000

/**
 * Everything PostgreSQL knows for the score, in one statement (one snapshot). Open alerts are all but resolved ones;
 * resolved ones are read only as far back as the false-alarm window ($2), which the partial index on resolved alerts serves.
 */
const INPUTS_SQL = `
SELECT u.category, d.total, d.offline, d.pressure_devices, a.*
FROM units u
CROSS JOIN LATERAL (
  SELECT count(*)::int AS total,
         count(*) FILTER (WHERE NOT online)::int AS offline,
         coalesce(array_agg(id) FILTER (WHERE kind = 'sprinkler_pressure'), '{}') AS pressure_devices
  FROM devices WHERE unit_id = u.id
) d
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE is_open AND class = 'fire')::int AS open_fire,
         count(*) FILTER (WHERE is_open AND class = 'fire' AND verification IN ('two_sources', 'operator'))::int AS confirmed_fire,
         count(*) FILTER (WHERE is_open AND class = 'supervisory')::int AS open_supervisory,
         count(*) FILTER (WHERE is_open AND class = 'trouble')::int AS open_trouble,
         count(*) FILTER (WHERE is_open AND class = 'isolation')::int AS active_isolations,
         count(*) FILTER (WHERE NOT is_open AND class = 'fire' AND disposition = 'false_alarm')::int AS false_alarms
  FROM (
    SELECT class, verification, disposition, status <> 'resolved' AS is_open
    FROM alerts WHERE unit_id = u.id AND (status <> 'resolved' OR resolved_at > $2)
  ) x
) a
WHERE u.id = $1`

// Keeps the newer score when two computations of one unit race.
const UPSERT_SQL = `
INSERT INTO unit_risk (unit_id, score, level, factors, computed_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (unit_id) DO UPDATE
  SET score = EXCLUDED.score, level = EXCLUDED.level, factors = EXCLUDED.factors, computed_at = EXCLUDED.computed_at
  WHERE unit_risk.computed_at <= EXCLUDED.computed_at`

type Row = Record<string, unknown>

const notFound = (unitId: string) => new FirewatchError('FW_ERR_NOT_FOUND', `unit ${unitId} does not exist`, { statusCode: 404 })
/** A database nobody wrote to yet: no points, not a failure. */
const noDatabase = (err: unknown) => /database not found/.test((err as Error).message)

export class RiskService {
  /** Units being recomputed by {@link schedule}, and whether another change came in meanwhile. */
  private readonly running = new Map<string, { done: Promise<void>; again: boolean }>()

  private active = 0
  private readonly scoreListeners: ((risk: UnitRisk) => Promise<void> | void)[] = []
  private readonly waiting: (() => void)[] = []

  constructor(readonly deps: RiskDeps) {}

  private async slot(): Promise<void> {
    if (this.active < 3) {
      this.active++
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.active--
  }

  /**
   * An alert listener (`alerts.on('risk', risk.onAlertChange)`): recomputes the unit's score in the background,
   * so a slow InfluxDB never delays the alert path.
   */
  readonly onAlertChange = (alert: Pick<Alert, 'unitId'>): void => {
    void this.schedule(alert.unitId)
  }

  /**
   * Recompute soon. Changes arriving while a computation of the unit runs make one more computation after it, not
   * one each: a burst of alerts costs two computations. Resolves once the unit's score reflects this call; never rejects.
   */
  schedule(unitId: string): Promise<void> {
    const current = this.running.get(unitId)
    if (current) {
      current.again = true
      return current.done
    }
    const entry = { done: Promise.resolve(), again: true }
    entry.done = (async () => {
      try {
        while (entry.again) {
          entry.again = false
          // At most a few units at once: an alarm storm across a district must not take every database connection
          // the rule engine needs.
          await this.slot()
          try {
            await this.recompute(unitId).catch((err) => this.deps.log.warn({ err, unitId }, 'unit risk recompute failed'))
          } finally {
            this.release()
          }
        }
      } finally {
        this.running.delete(unitId)
      }
    })()
    this.running.set(unitId, entry)
    return entry.done
  }

  /** Hear every computed score (the follow-up's risk-level policies). A listener failing is logged; the score stands. */
  onScore(fn: (risk: UnitRisk) => Promise<void> | void): void {
    this.scoreListeners.push(fn)
  }

  /** Resolves when no scheduled computation runs (before closing the pool). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((e) => e.done))
  }

  /** Compute the unit's score now, keep it in `unit_risk` and add it to the history. */
  async recompute(unitId: string): Promise<UnitRisk> {
    const computedAt = new Date()
    const inputs = await this.inputs(unitId, computedAt)
    if (!inputs) throw notFound(unitId)
    const risk: UnitRisk = { unitId, ...scoreRisk(inputs), computedAt: computedAt.toISOString() }
    await this.deps.pool.query(UPSERT_SQL, [unitId, risk.score, risk.level, JSON.stringify(risk.factors), computedAt])
    await this.writeHistory(risk, computedAt)
    for (const fn of this.scoreListeners) {
      await Promise.resolve()
        .then(() => fn(risk))
        .catch((err: unknown) => this.deps.log.warn({ err, unitId }, 'risk score listener failed'))
    }
    return risk
  }

  /** The stored score; computed now if the unit has none yet. Null for a unit that does not exist. */
  async get(unitId: string): Promise<UnitRisk | null> {
    const { rows } = await this.deps.pool.query(
      'SELECT r.score, r.level, r.factors, r.computed_at FROM units u LEFT JOIN unit_risk r ON r.unit_id = u.id WHERE u.id = $1',
      [unitId]
    )
    const r = rows[0] as Row | undefined
    if (!r) return null
    if (r.score === null) return this.recompute(unitId)
    return {
      unitId,
      score: r.score as number,
      level: r.level as RiskLevel,
      factors: r.factors as UnitRisk['factors'],
      computedAt: (r.computed_at as Date).toISOString()
    }
  }

  async exists(unitId: string): Promise<boolean> {
    const { rowCount } = await this.deps.pool.query('SELECT 1 FROM units WHERE id = $1', [unitId])
    return (rowCount ?? 0) > 0
  }

  /** Scores computed in [from, to], oldest first: the newest {@link HISTORY_LIMIT} of them. */
  async history(unitId: string, from: Date, to: Date): Promise<RiskPoint[]> {
    const q =
      `SELECT "score", "level" FROM ${quoteIdent(MEASUREMENTS.unitRisk)} WHERE "unit_id" = ${quoteString(unitId)} ` +
      `AND time >= ${from.getTime()}ms AND time <= ${to.getTime()}ms ORDER BY time DESC LIMIT ${HISTORY_LIMIT}`
    const series = await this.deps.store.query(q).catch((err) => (noDatabase(err) ? [] : Promise.reject(err as Error)))
    const s = series[0]
    if (!s) return []
    const [si, li] = [s.columns.indexOf('score'), s.columns.indexOf('level')]
    return s.values.reverse().map((row) => ({ ts: row[0] as number, score: Number(row[si]), level: String(row[li]) as RiskLevel }))
  }

  private async inputs(unitId: string, at: Date): Promise<RiskInputs | null> {
    const since = new Date(at.getTime() - FALSE_ALARM_WINDOW_DAYS * DAY_MS)
    const { rows } = await this.deps.pool.query(INPUTS_SQL, [unitId, since])
    const r = rows[0] as Row | undefined
    if (!r) return null
    return {
      category: r.category as UnitCategory,
      openFire: r.open_fire as number,
      confirmedFire: r.confirmed_fire as number,
      openSupervisory: r.open_supervisory as number,
      openTrouble: r.open_trouble as number,
      activeIsolations: r.active_isolations as number,
      devicesTotal: r.total as number,
      devicesOffline: r.offline as number,
      falseAlarms: r.false_alarms as number,
      lowestPressure: await this.lowestPressure(unitId, r.pressure_devices as string[])
    }
  }

  /** The lowest of the latest pressures (last day) of the unit's sprinkler pressure devices. */
  private async lowestPressure(unitId: string, deviceIds: string[]): Promise<RiskInputs['lowestPressure']> {
    if (deviceIds.length === 0) return null
    const wanted = new Set(deviceIds)
    let series
    try {
      series = await this.deps.store.query(
        `SELECT last("pressure_mpa") FROM ${quoteIdent(MEASUREMENTS.readings)} WHERE "unit_id" = ${quoteString(unitId)} ` +
          `AND time > now() - 1d GROUP BY "device_id"`
      )
    } catch (err) {
      if (noDatabase(err)) return null
      this.deps.log.warn({ err, unitId }, 'sprinkler pressures unavailable; risk pressure factor unknown')
      return 'unknown'
    }
    let lowest: { deviceId: string; mpa: number } | null = null
    for (const s of series) {
      const deviceId = s.tags?.device_id
      const mpa = s.values[0]?.[1]
      // Only the unit's sprinkler pressure devices as registered now: readings keep the unit tag they were written with.
      if (!deviceId || !wanted.has(deviceId) || typeof mpa !== 'number') continue
      if (!lowest || mpa < lowest.mpa) lowest = { deviceId, mpa }
    }
    return lowest
  }

  private async writeHistory(risk: UnitRisk, at: Date): Promise<void> {
    const point = new Point(MEASUREMENTS.unitRisk).tag('unit_id', risk.unitId).intField('score', risk.score).stringField('level', risk.level).timestamp(at)
    try {
      await this.deps.store.writePoints([point])
    } catch (err) {
      this.deps.log.warn({ err, unitId: risk.unitId }, 'unit risk history point not written')
    }
  }
}
