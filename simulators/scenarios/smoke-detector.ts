/**
 * Independent / NB-IoT photoelectric smoke detector (profile `smoke_detector`, GB 20517-2025). Values are pure
 * functions of (step, seed); the alarm itself is latched with hysteresis, as detector firmware does.
 */
import { signed, unit } from '../lib/random.js'
import { batteryPct, daily, lowBatteryEvents, ramp, round, timeline, type Behaviour, type SimEvent } from '../lib/behaviour.js'

export const SMOKE_SCENARIOS = ['normal', 'smoke', 'tamper', 'low-battery', 'test'] as const
export type SmokeScenario = (typeof SMOKE_SCENARIOS)[number]

/** GB 4715-2024: a type A photoelectric point detector's response threshold is ≥ 0.05 dB/m. */
export const ALARM_DBM = 0.05
/** The alarm restores under this (hysteresis), so smoke hovering at the threshold makes one alarm, not a storm. */
export const RESTORE_DBM = 0.03
/** Clean air as simulated. */
export const CLEAN_AIR_DBM = { min: 0, max: 0.02 } as const

export const SMOKE_TIMELINE = {
  /** Smoke rises from `rise` to `peakDbm` at `peak`, holds, clears from `clear`, is clean air again at `clean`. */
  smoke: { rise: 10, peak: 25, clear: 40, clean: 55, peakDbm: 0.4 },
  tamper: { removed: 5, reinstalled: 20 },
  test: { pressed: 3 },
  /** A nearly flat battery: under the 20 % limit after 21 steps. */
  lowBattery: { startPct: 24, drainPerStep: 0.2 }
} as const

const cleanAir = (k: number, seed: number) => 0.002 + 0.016 * unit(seed, k, 'smoke')

export function smokeDbm(scenario: SmokeScenario, k: number, seed: number): number {
  const clean = cleanAir(k, seed)
  if (scenario !== 'smoke') return round(clean, 3)
  const { rise, peak, clear, clean: cleanAt, peakDbm } = SMOKE_TIMELINE.smoke
  const plume = k < clear ? ramp(k, rise, 0, peak, peakDbm) : ramp(k, clear, peakDbm, cleanAt, 0)
  return round(clean + plume * (1 + 0.03 * signed(seed, k, 'plume')), 3)
}

export function smokeBehaviour(scenario: SmokeScenario, seed: number): Behaviour {
  const battery =
    scenario === 'low-battery'
      ? (k: number) => round(batteryPct(k, SMOKE_TIMELINE.lowBattery.startPct, SMOKE_TIMELINE.lowBattery.drainPerStep), 1)
      : // About 3 years of battery (GB 20517), compressed to 1 % per 1,000 steps so a long demo sees it move.
        (k: number) => round(batteryPct(k, 85 + 15 * unit(seed, 'battery'), 0.001), 1)
  const scripted =
    scenario === 'tamper'
      ? timeline({
          [SMOKE_TIMELINE.tamper.removed]: [{ type: 'tamper', text: 'removed from its base' }],
          [SMOKE_TIMELINE.tamper.reinstalled]: [{ type: 'restore', text: 'reinstalled on its base' }]
        })
      : scenario === 'test'
        ? timeline({ [SMOKE_TIMELINE.test.pressed]: [{ type: 'test', text: 'test button pressed' }] })
        : () => []
  const signal = -90 + 10 * unit(seed, 'site')
  let alarmed = false

  return (k) => {
    const smoke = smokeDbm(scenario, k, seed)
    const events: SimEvent[] = [...scripted(k), ...lowBatteryEvents(k, battery)]
    if (!alarmed && smoke >= ALARM_DBM) {
      alarmed = true
      events.push({ type: 'fire', text: `smoke ${smoke} dB/m` })
    } else if (alarmed && smoke < RESTORE_DBM) {
      alarmed = false
      events.push({ type: 'restore', text: `smoke cleared (${smoke} dB/m)` })
    }
    return {
      values: {
        smoke_dbm: smoke,
        battery_pct: battery(k),
        // Indoors 20–24 °C; hot smoke warms the detector too.
        temperature_c: round(22 + 2 * daily(k, 6 * unit(seed, 'tphase')) + 0.1 * signed(seed, k, 't') + 40 * Math.max(0, smoke - 0.02), 1),
        // NB-IoT RSRP of a fixed site (-90 to -80 dBm) with fading.
        signal_dbm: Math.round(signal + 3 * signed(seed, k, 'rsrp'))
      },
      events
    }
  }
}
