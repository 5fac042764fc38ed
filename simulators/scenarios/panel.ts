/**
 * Fire-alarm control panel (profile `alarm_panel`): mains and backup-battery voltages, and point events scripted by
 * step. Pure functions of (step, seed). Points are loop-zone-address (`1-02-034`); the zone is the floor.
 */
import { hash, pick, signed, unit } from '../lib/random.js'
import { ramp, round, timeline, type Behaviour, type SimEvent, type Step } from '../lib/behaviour.js'

export const PANEL_SCENARIOS = ['quiet', 'fire', 'fault', 'isolate', 'power-fault', 'random', 'storm'] as const
export type PanelScenario = (typeof PANEL_SCENARIOS)[number]

/** Nominal mains supply. */
export const MAINS_V = 220
/** A 24 V lead-acid backup battery on float charge (2 × 13.65 V). */
export const FLOAT_V = 27.3
/** The same battery, charged, once the charger stops: where it starts when mains fail. */
const OFF_CHARGE_V = 25.4

export const PANEL_TIMELINE = {
  fire: { alarm: 2, restore: 12, reset: 15 },
  fault: { fault: 2, restore: 12 },
  isolate: { isolate: 2, restore: 25 },
  /** On battery from `fail` to `restore`: it sags to `lowV`, under the profile's 21.6 V safe minimum. */
  powerFault: { fail: 2, restore: 25, lowV: 21.3 },
  /** Steps per episode of `random`; every scripted scenario above fits in one. */
  randomEpisode: 40,
  /** Mains lost at `fail`; `points` points go into alarm or fault over steps `burst`; all back by `reset`. */
  storm: { fail: 2, burst: [3, 4, 5], points: 60, restore: 20, pointsRestore: 21, reset: 25, lowV: 23.5 }
} as const

const PLACES = [
  'east corridor',
  'west corridor',
  'lift lobby',
  'north stairwell',
  'south stairwell',
  'kitchen',
  'store room',
  'plant room',
  'meeting room',
  'open office'
]

/**
 * The n-th point of a seeded building: loop 1–4, zone (floor) 1–20, address 1–200. Addresses step by 37 (coprime
 * with 200), so the first 200 points of a seed are distinct.
 */
export function pointAt(seed: number, n: number): { point: string; text: string } {
  const floor = 1 + (hash(seed, n, 'floor') % 20)
  const loop = 1 + (hash(seed, n, 'loop') % 4)
  const address = 1 + ((hash(seed, 'address') + 37 * n) % 200)
  return {
    point: `${loop}-${String(floor).padStart(2, '0')}-${String(address).padStart(3, '0')}`,
    text: `${floor}F ${pick(PLACES, seed, n, 'place')}`
  }
}

interface Script {
  values(k: number): Step['values']
  events(k: number): SimEvent[]
}

const supply = (k: number, seed: number, mainsOn: boolean, batteryV: number): Step['values'] => ({
  main_power_v: mainsOn ? round(MAINS_V + 2 * signed(seed, k, 'mains'), 1) : 0,
  backup_battery_v: round(batteryV + 0.03 * signed(seed, k, 'battery'), 2)
})

const onMains = (seed: number) => (k: number) => supply(k, seed, true, FLOAT_V)

/**
 * Mains lost from step `fail` to `restore`: the battery drops off float at once, then sags linearly to `lowV`;
 * back on mains the charger lifts it above float and it settles.
 */
function outage(seed: number, fail: number, restore: number, lowV: number) {
  return (k: number) => {
    if (k < fail) return supply(k, seed, true, FLOAT_V)
    if (k < restore) return supply(k, seed, false, ramp(k, fail, OFF_CHARGE_V, restore - 1, lowV))
    return supply(k, seed, true, FLOAT_V + 0.4 * Math.exp(-(k - restore) / 4))
  }
}

function script(scenario: Exclude<PanelScenario, 'random'>, seed: number): Script {
  const p = pointAt(seed, 0)
  switch (scenario) {
    case 'quiet':
      return { values: onMains(seed), events: () => [] }
    case 'fire': {
      const t = PANEL_TIMELINE.fire
      return {
        values: onMains(seed),
        events: timeline({
          [t.alarm]: [{ type: 'fire', ...p }],
          [t.restore]: [{ type: 'restore', point: p.point, text: `${p.text}: detector clear` }],
          [t.reset]: [{ type: 'reset', text: 'panel reset by the operator' }]
        })
      }
    }
    case 'fault': {
      const t = PANEL_TIMELINE.fault
      return {
        values: onMains(seed),
        events: timeline({
          [t.fault]: [{ type: 'fault', point: p.point, text: `${p.text}: detector open circuit` }],
          [t.restore]: [{ type: 'restore', point: p.point, text: `${p.text}: fault cleared` }]
        })
      }
    }
    case 'isolate': {
      const t = PANEL_TIMELINE.isolate
      return {
        values: onMains(seed),
        events: timeline({
          [t.isolate]: [{ type: 'isolate', point: p.point, text: `${p.text}: isolated for maintenance` }],
          [t.restore]: [{ type: 'restore', point: p.point, text: `${p.text}: back in service` }]
        })
      }
    }
    case 'power-fault': {
      const t = PANEL_TIMELINE.powerFault
      return {
        values: outage(seed, t.fail, t.restore, t.lowV),
        events: timeline({
          [t.fail]: [{ type: 'power_fault', text: 'main power failure; on backup battery' }],
          [t.restore]: [{ type: 'restore', text: 'main power restored' }]
        })
      }
    }
    case 'storm': {
      const t = PANEL_TIMELINE.storm
      const points = Array.from({ length: t.points }, (_, n) => pointAt(seed, n))
      const perStep = Math.ceil(t.points / t.burst.length)
      // Voltage dips on the loops: mostly faults, some false fire alarms.
      const burst = (i: number): SimEvent[] =>
        points.slice(i * perStep, (i + 1) * perStep).map((q, j) => ({
          type: unit(seed, i * perStep + j, 'kind') < 0.3 ? 'fire' : 'fault',
          ...q
        }))
      return {
        values: outage(seed, t.fail, t.restore, t.lowV),
        events: timeline({
          [t.fail]: [{ type: 'power_fault', text: 'main power failure; on backup battery' }],
          ...Object.fromEntries(t.burst.map((k, i) => [k, burst(i)])),
          [t.restore]: [{ type: 'restore', text: 'main power restored' }],
          [t.pointsRestore]: points.map((q) => ({ type: 'restore', point: q.point, text: `${q.text}: normal` })),
          [t.reset]: [{ type: 'reset', text: 'panel reset by the operator' }]
        })
      }
    }
  }
}

/** `random`: episodes of PANEL_TIMELINE.randomEpisode steps, each a seeded pick of a scripted scenario. */
const EPISODE_WEIGHTS: [Exclude<PanelScenario, 'random' | 'storm'>, number][] = [
  ['quiet', 0.4],
  ['fault', 0.25],
  ['isolate', 0.15],
  ['fire', 0.1],
  ['power-fault', 0.1]
]

function episode(seed: number, e: number): Script {
  let r = unit(seed, e, 'episode')
  const found = EPISODE_WEIGHTS.find(([, w]) => (r -= w) < 0)
  return script(found?.[0] ?? 'quiet', hash(seed, e))
}

export function panelBehaviour(scenario: PanelScenario, seed: number): Behaviour {
  if (scenario === 'random') {
    const len = PANEL_TIMELINE.randomEpisode
    return (k) => {
      const s = episode(seed, Math.floor(k / len))
      return { values: s.values(k % len), events: s.events(k % len) }
    }
  }
  const s = script(scenario, seed)
  return (k) => ({ values: s.values(k), events: s.events(k) })
}
