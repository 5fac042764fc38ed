/**
 * Fire-water tank level sensor (profile `water_level`). Pure functions of (step, seed), like the other scenarios.
 */
import { signed, unit } from '../lib/random.js'
import { daily, ramp, round, type Behaviour } from '../lib/behaviour.js'

export const TANK_SCENARIOS = ['filling', 'draining'] as const
export type TankScenario = (typeof TANK_SCENARIOS)[number]

/** A tank 4.5 m deep: filling from 1 m stops at the float valve; draining (a pump test, a leak) runs down to 0.2 m. */
export const TANK = { fullM: 4.5, lowM: 1.0, emptyM: 0.2, fillSteps: 350, drainSteps: 200 } as const

export function tankLevel(scenario: TankScenario, k: number, seed: number): number {
  const noise = 0.005 * signed(seed, k, 'level')
  const level =
    scenario === 'filling' ? ramp(k, 0, TANK.lowM, TANK.fillSteps, TANK.fullM) : ramp(k, 0, TANK.fullM, TANK.drainSteps, TANK.emptyM)
  return round(Math.max(0, level + noise), 3)
}

export function tankBehaviour(scenario: TankScenario, seed: number): Behaviour {
  return (k) => ({
    values: {
      level_m: tankLevel(scenario, k, seed),
      // Water in a basement tank: 8–14 °C over a day.
      temperature_c: round(11 + 3 * daily(k, 6 * unit(seed, 'tphase')) + 0.1 * signed(seed, k, 't'), 1)
    },
    events: []
  })
}
