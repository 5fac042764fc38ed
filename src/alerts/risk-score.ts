/**
 * The unit risk score, 0–100: a sum of capped points, one term per factor, so an inspector can read why a unit
 * ranks where it does. Pure: the inputs come from PostgreSQL and InfluxDB (risk.ts), nothing here touches them.
 *
 * | factor              | points                                                              | cap |
 * | ------------------- | ------------------------------------------------------------------- | --- |
 * | `open_fire`         | 50 for the first open fire alert, +10 for each further one;         |  75 |
 * |                     | 75 once one is confirmed (two sources, or an operator)              |     |
 * | `open_supervisory`  | 8 per open supervisory alert                                        |  20 |
 * | `open_trouble`      | 5 per open trouble alert                                            |  20 |
 * | `offline_devices`   | 20 × the share of the unit's devices offline                        |  20 |
 * | `active_isolations` | 5 per open isolation (屏蔽): a point that cannot raise an alarm       |  15 |
 * | `false_alarm_rate`  | 2 per fire alert disposed as a false alarm in the last 30 days      |  10 |
 * | `pressure_margin`   | 15 when a sprinkler pressure is below 0.05 MPa, 8 within 0.03 MPa   |  15 |
 * | `category`          | high_risk 10, key 5, general 0                                      |  10 |
 *
 * The total is capped at 100. Levels: < 25 low, < 50 medium, < 75 high, ≥ 75 critical. An open fire alert alone
 * makes a unit `high`, a confirmed one `critical`, whatever else holds. "Open" is any status but resolved; test alerts
 * (devices in test mode) never count. Every factor is always listed, with 0 points when it adds nothing, so the
 * list reads the same for every unit.
 */
import type { RiskFactor, RiskLevel } from '../../schemas/alerts.js'

/** GB 50084: working pressure at the most unfavourable sprinkler ≥ 0.05 MPa (devices/sprinkler_pressure.yaml). */
export const PRESSURE_SAFE_MIN_MPA = 0.05
/** A pressure this close above the minimum is a warning: a small drop takes it below. */
export const PRESSURE_WARN_MARGIN_MPA = 0.03
/** False alarms counted over this many days. */
export const FALSE_ALARM_WINDOW_DAYS = 30

export const RISK_WEIGHTS = {
  fireFirst: 50,
  fireEachMore: 10,
  fireConfirmed: 75,
  fireCap: 75,
  supervisoryEach: 8,
  supervisoryCap: 20,
  troubleEach: 5,
  troubleCap: 20,
  offlineCap: 20,
  isolationEach: 5,
  isolationCap: 15,
  falseAlarmEach: 2,
  falseAlarmCap: 10,
  pressureBelow: 15,
  pressureNear: 8,
  category: { high_risk: 10, key: 5, general: 0 }
} as const

/** Lower bounds of each level but `low`. */
export const LEVEL_FLOORS = { medium: 25, high: 50, critical: 75 } as const

export type UnitCategory = keyof typeof RISK_WEIGHTS.category

export interface RiskInputs {
  category: UnitCategory
  /** Open fire alerts, and how many of them are confirmed (verification two_sources or operator). */
  openFire: number
  confirmedFire: number
  openSupervisory: number
  openTrouble: number
  /** Open alerts of class isolation. */
  activeIsolations: number
  devicesTotal: number
  devicesOffline: number
  /** Fire alerts disposed as false_alarm in the last {@link FALSE_ALARM_WINDOW_DAYS} days. */
  falseAlarms: number
  /**
   * The unit's lowest latest sprinkler pressure: `null` when no pressure device reported in the last day,
   * `'unknown'` when InfluxDB could not be asked.
   */
  lowestPressure: { deviceId: string; mpa: number } | null | 'unknown'
}

export interface RiskResult {
  score: number
  level: RiskLevel
  factors: RiskFactor[]
}

const capped = (points: number, cap: number) => Math.min(Math.round(points), cap)
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
const mpa = (v: number) => `${v.toFixed(3)} MPa`

export function levelOf(score: number): RiskLevel {
  if (score >= LEVEL_FLOORS.critical) return 'critical'
  if (score >= LEVEL_FLOORS.high) return 'high'
  if (score >= LEVEL_FLOORS.medium) return 'medium'
  return 'low'
}

function fire(open: number, confirmed: number): RiskFactor {
  const w = RISK_WEIGHTS
  if (open === 0) return { factor: 'open_fire', points: 0, value: 0, note: 'no open fire alert' }
  const points = confirmed > 0 ? w.fireConfirmed : capped(w.fireFirst + (open - 1) * w.fireEachMore, w.fireCap)
  const note =
    confirmed > 0
      ? `${plural(open, 'open fire alert')}, ${confirmed} confirmed (two sources or an operator)`
      : `${plural(open, 'open fire alert')}, not confirmed`
  return { factor: 'open_fire', points, value: open, note }
}

function perAlert(factor: string, n: number, each: number, cap: number, what: string): RiskFactor {
  return { factor, points: capped(n * each, cap), value: n, note: n === 0 ? `no open ${what} alert` : plural(n, `open ${what} alert`) }
}

function offline(total: number, down: number): RiskFactor {
  if (total === 0) return { factor: 'offline_devices', points: 0, value: 0, note: 'no devices registered: nothing here is monitored' }
  return {
    factor: 'offline_devices',
    points: capped((RISK_WEIGHTS.offlineCap * down) / total, RISK_WEIGHTS.offlineCap),
    value: down,
    note: `${down} of ${plural(total, 'device')} offline`
  }
}

function isolations(n: number): RiskFactor {
  return {
    factor: 'active_isolations',
    points: capped(n * RISK_WEIGHTS.isolationEach, RISK_WEIGHTS.isolationCap),
    value: n,
    note: n === 0 ? 'no active isolation' : `${plural(n, 'active isolation')}: isolated points cannot raise an alarm`
  }
}

function falseAlarms(n: number): RiskFactor {
  return {
    factor: 'false_alarm_rate',
    points: capped(n * RISK_WEIGHTS.falseAlarmEach, RISK_WEIGHTS.falseAlarmCap),
    value: n,
    note: `${plural(n, 'false fire alarm')} in the last ${FALSE_ALARM_WINDOW_DAYS} days`
  }
}

function pressure(lowest: RiskInputs['lowestPressure']): RiskFactor {
  const factor = 'pressure_margin'
  if (lowest === 'unknown') return { factor, points: 0, value: null, note: 'unknown: InfluxDB could not be queried for sprinkler pressures' }
  if (lowest === null) return { factor, points: 0, value: null, note: 'no sprinkler pressure reading in the last day' }
  const margin = Math.round((lowest.mpa - PRESSURE_SAFE_MIN_MPA) * 1000) / 1000
  const min = mpa(PRESSURE_SAFE_MIN_MPA)
  if (margin < 0) {
    return { factor, points: RISK_WEIGHTS.pressureBelow, value: margin, note: `${lowest.deviceId} reads ${mpa(lowest.mpa)}, below the GB 50084 minimum ${min}` }
  }
  if (margin < PRESSURE_WARN_MARGIN_MPA) {
    return { factor, points: RISK_WEIGHTS.pressureNear, value: margin, note: `${lowest.deviceId} reads ${mpa(lowest.mpa)}, within ${mpa(PRESSURE_WARN_MARGIN_MPA)} of the GB 50084 minimum ${min}` }
  }
  return { factor, points: 0, value: margin, note: `lowest sprinkler pressure ${mpa(lowest.mpa)} (${lowest.deviceId}), ${mpa(margin)} above the minimum ${min}` }
}

function category(c: UnitCategory): RiskFactor {
  const label = { high_risk: 'fire-safety high-risk unit (火灾高危单位)', key: 'fire-safety key unit (消防安全重点单位)', general: 'general unit' }[c]
  return { factor: 'category', points: RISK_WEIGHTS.category[c], value: c, note: label }
}

export function scoreRisk(inputs: RiskInputs): RiskResult {
  const w = RISK_WEIGHTS
  const factors = [
    fire(inputs.openFire, inputs.confirmedFire),
    perAlert('open_supervisory', inputs.openSupervisory, w.supervisoryEach, w.supervisoryCap, 'supervisory'),
    perAlert('open_trouble', inputs.openTrouble, w.troubleEach, w.troubleCap, 'trouble'),
    offline(inputs.devicesTotal, inputs.devicesOffline),
    isolations(inputs.activeIsolations),
    falseAlarms(inputs.falseAlarms),
    pressure(inputs.lowestPressure),
    category(inputs.category)
  ]
  const score = Math.min(100, factors.reduce((sum, f) => sum + f.points, 0))
  return { score, level: levelOf(score), factors }
}
