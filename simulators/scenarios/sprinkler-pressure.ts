/**
 * Sprinkler pipe-network pressure transmitter (profile `sprinkler_pressure`). Every scenario is a pure function of
 * (step, seed). The transmitter only measures: deciding that a pressure is too low is the server's rule engine's job,
 * so these scenarios raise no pressure events of their own.
 */
import { signed, unit } from '../lib/random.js'
import { batteryPct, daily, lowBatteryEvents, ramp, round, type Behaviour } from '../lib/behaviour.js'

export const SPRINKLER_SCENARIOS = ['normal', 'slow-leak', 'pump-start', 'burst', 'overpressure'] as const
export type SprinklerScenario = (typeof SPRINKLER_SCENARIOS)[number]

/** GB 50084: working pressure at the most unfavourable sprinkler ≥ 0.05 MPa. */
export const MIN_WORKING_MPA = 0.05
/** GB 50084: pressure in the distribution piping ≤ 1.20 MPa. */
export const MAX_PIPING_MPA = 1.2
/**
 * Standing pressure of a healthy wet system as simulated; the top matches GB 50084's ≤ 0.40 MPa at a distribution
 * main inlet in light and ordinary hazard occupancies.
 */
export const NORMAL_MPA = { min: 0.25, max: 0.4 } as const

/** Steps at which each scenario's disturbance happens (time is compressed so a demo sees it in minutes). */
export const SPRINKLER_TIMELINE = {
  /** A leak starts at `start`; from `below` on the pressure stays under MIN_WORKING_MPA. */
  slowLeak: { start: 10, below: 130, floorMpa: 0.02 },
  /** A valve opens at `drop`, the pressure switch starts the pump at `pumpOn`, it overshoots to `peakMpa` at `peak`. */
  pumpStart: { drop: 10, pumpOn: 15, troughMpa: 0.12, peak: 20, peakMpa: 0.9, settleSteps: 10 },
  /** The pipe bursts at `at`; from `nearZero` on the pressure is under 0.01 MPa. */
  burst: { at: 10, nearZero: 15 },
  /** A pressure-reducing valve fails at `start`; from `above` on the pressure stays over MAX_PIPING_MPA. */
  overpressure: { start: 10, above: 40, peakMpa: 1.35 }
} as const

/** The standing pressure: a seeded level in 0.28–0.36 MPa, a slow swing and gauge noise, within NORMAL_MPA. */
export function normalPressure(k: number, seed: number): number {
  const level = 0.28 + 0.08 * unit(seed, 'level')
  return level + 0.02 * Math.sin((2 * Math.PI * k) / 600 + 6 * unit(seed, 'phase')) + 0.008 * signed(seed, k, 'p')
}

export function pressure(scenario: SprinklerScenario, k: number, seed: number): number {
  const normal = normalPressure(k, seed)
  const noise = (amplitude: number) => amplitude * signed(seed, k, 'n')
  let p = normal
  switch (scenario) {
    case 'normal':
      break
    case 'slow-leak': {
      const { start, below, floorMpa } = SPRINKLER_TIMELINE.slowLeak
      const f = ramp(k, start, 0, below, 1)
      p = normal * (1 - f) + floorMpa * f + noise(0.002) * f
      break
    }
    case 'pump-start': {
      const { drop, pumpOn, troughMpa, peak, peakMpa, settleSteps } = SPRINKLER_TIMELINE.pumpStart
      if (k >= peak) p = normal + (peakMpa - normal) * Math.exp(-(k - peak) / settleSteps) + noise(0.005)
      else if (k >= pumpOn) p = ramp(k, pumpOn, troughMpa, peak, peakMpa) + noise(0.005)
      else if (k >= drop) p = ramp(k, drop, normal, pumpOn, troughMpa) + noise(0.005)
      break
    }
    case 'burst': {
      const { at } = SPRINKLER_TIMELINE.burst
      // Falls with a time constant of ~1 step: under 0.01 MPa within 5 steps.
      if (k >= at) p = normal * Math.exp(-(k - at) / 1.2) + 0.003 * unit(seed, k, 'n')
      break
    }
    case 'overpressure': {
      const { start, above, peakMpa } = SPRINKLER_TIMELINE.overpressure
      if (k >= start) p = ramp(k, start, normal, above, peakMpa) + noise(0.01)
      break
    }
  }
  return round(p, 3)
}

export function sprinklerBehaviour(scenario: SprinklerScenario, seed: number): Behaviour {
  // Wireless transmitters: seeded charge 60–100 %, about 1 % per 2,000 steps.
  const battery = (k: number) => round(batteryPct(k, 60 + 40 * unit(seed, 'battery'), 0.0005), 1)
  return (k) => ({
    values: {
      pressure_mpa: pressure(scenario, k, seed),
      battery_pct: battery(k),
      // Pump rooms and risers: 10–20 °C over a day.
      temperature_c: round(15 + 4 * daily(k, 6 * unit(seed, 'tphase')) + 0.2 * signed(seed, k, 't'), 1)
    },
    events: lowBatteryEvents(k, battery)
  })
}
