/** The simulators' scenario generators, without a broker: values, event timelines, seeds, and the server's own validation. */
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { projectRoot } from '../src/config/index.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { normalize } from '../src/ingest/normalize.js'
import type { Behaviour, SimEvent, Step } from '../simulators/lib/behaviour.js'
import { LOW_BATTERY_PCT } from '../simulators/lib/behaviour.js'
import {
  MAX_PIPING_MPA,
  MIN_WORKING_MPA,
  NORMAL_MPA,
  SPRINKLER_SCENARIOS,
  SPRINKLER_TIMELINE,
  pressure,
  sprinklerBehaviour
} from '../simulators/scenarios/sprinkler-pressure.js'
import { ALARM_DBM, CLEAN_AIR_DBM, RESTORE_DBM, SMOKE_SCENARIOS, SMOKE_TIMELINE, smokeBehaviour } from '../simulators/scenarios/smoke-detector.js'
import { FLOAT_V, PANEL_SCENARIOS, PANEL_TIMELINE, panelBehaviour } from '../simulators/scenarios/panel.js'

/** Steps 0 … n-1, in order (as the runner calls a behaviour). */
const run = (b: Behaviour, n: number): Step[] => Array.from({ length: n }, (_, k) => b(k))
const eventsOf = (steps: Step[]) => steps.flatMap((s, k) => s.events.map((e) => ({ k, ...e })))
const SEEDS = [0, 1, 42, 2 ** 32 - 1]

describe('sprinkler pressure', () => {
  it('normal stays within 0.25–0.40 MPa', () => {
    for (const seed of SEEDS) {
      for (let k = 0; k < 5000; k++) {
        const p = pressure('normal', k, seed)
        expect(p).toBeGreaterThanOrEqual(NORMAL_MPA.min)
        expect(p).toBeLessThanOrEqual(NORMAL_MPA.max)
      }
    }
  })

  it('slow-leak declines gradually and stays below 0.05 MPa from its stated step on', () => {
    const { start, below } = SPRINKLER_TIMELINE.slowLeak
    for (const seed of SEEDS) {
      expect(pressure('slow-leak', start, seed)).toBeGreaterThanOrEqual(NORMAL_MPA.min)
      const firstLow = Array.from({ length: below + 1 }, (_, k) => pressure('slow-leak', k, seed)).findIndex((p) => p < MIN_WORKING_MPA)
      // Slow: most of the decline period passes before it is under the limit.
      expect(firstLow).toBeGreaterThan(start + (below - start) / 2)
      for (let k = below; k < below + 1000; k++) expect(pressure('slow-leak', k, seed)).toBeLessThan(MIN_WORKING_MPA)
    }
  })

  it('pump-start drops, overshoots to about 0.9 MPa (still under 1.2) and settles back', () => {
    const t = SPRINKLER_TIMELINE.pumpStart
    for (const seed of SEEDS) {
      const p = (k: number) => pressure('pump-start', k, seed)
      expect(p(t.pumpOn)).toBeLessThan(0.15)
      expect(p(t.peak)).toBeCloseTo(t.peakMpa, 1)
      for (let k = 0; k < 200; k++) expect(p(k)).toBeLessThan(MAX_PIPING_MPA)
      expect(p(t.peak + 6 * t.settleSteps)).toBeLessThanOrEqual(NORMAL_MPA.max)
    }
  })

  it('burst falls to near 0 within seconds', () => {
    const { at, nearZero } = SPRINKLER_TIMELINE.burst
    expect(nearZero - at).toBeLessThanOrEqual(5)
    for (const seed of SEEDS) {
      for (let k = nearZero; k < nearZero + 500; k++) {
        expect(pressure('burst', k, seed)).toBeLessThan(0.01)
        expect(pressure('burst', k, seed)).toBeGreaterThanOrEqual(0)
      }
    }
  })

  it('overpressure stays above 1.2 MPa from its stated step on', () => {
    const { start, above } = SPRINKLER_TIMELINE.overpressure
    for (const seed of SEEDS) {
      expect(pressure('overpressure', start - 1, seed)).toBeLessThanOrEqual(NORMAL_MPA.max)
      for (let k = above; k < above + 500; k++) expect(pressure('overpressure', k, seed)).toBeGreaterThan(MAX_PIPING_MPA)
    }
  })
})

describe('smoke detector', () => {
  it('normal is clean air (≤ 0.02 dB/m) with no events', () => {
    for (const seed of SEEDS) {
      const steps = run(smokeBehaviour('normal', seed), 3000)
      for (const s of steps) {
        expect(s.values.smoke_dbm).toBeGreaterThanOrEqual(CLEAN_AIR_DBM.min)
        expect(s.values.smoke_dbm).toBeLessThanOrEqual(CLEAN_AIR_DBM.max)
      }
      expect(eventsOf(steps)).toEqual([])
    }
  })

  it('smoke crosses the GB 4715 threshold: one fire when it does, one restore once it clears', () => {
    for (const seed of SEEDS) {
      const steps = run(smokeBehaviour('smoke', seed), 100)
      const events = eventsOf(steps)
      expect(events.map((e) => e.type)).toEqual(['fire', 'restore'])
      const [fire, restore] = events as [SimEvent & { k: number }, SimEvent & { k: number }]
      const smoke = (k: number) => steps[k]!.values.smoke_dbm!
      expect(smoke(fire.k)).toBeGreaterThanOrEqual(ALARM_DBM)
      expect(smoke(fire.k - 1)).toBeLessThan(ALARM_DBM)
      expect(smoke(restore.k)).toBeLessThan(RESTORE_DBM)
      expect(fire.k).toBeGreaterThan(SMOKE_TIMELINE.smoke.rise)
      expect(restore.k).toBeLessThanOrEqual(SMOKE_TIMELINE.smoke.clean)
    }
  })

  it('tamper: removed, then reinstalled', () => {
    const events = eventsOf(run(smokeBehaviour('tamper', 1), 60))
    expect(events.map((e) => [e.k, e.type])).toEqual([
      [SMOKE_TIMELINE.tamper.removed, 'tamper'],
      [SMOKE_TIMELINE.tamper.reinstalled, 'restore']
    ])
  })

  it('low-battery drains fast and reports low_battery exactly once, when under 20 %', () => {
    const steps = run(smokeBehaviour('low-battery', 1), 300)
    const pct = steps.map((s) => s.values.battery_pct!)
    pct.slice(1).forEach((p, i) => expect(p).toBeLessThanOrEqual(pct[i]!))
    const events = eventsOf(steps)
    expect(events.map((e) => e.type)).toEqual(['low_battery'])
    expect(pct[events[0]!.k]).toBeLessThan(LOW_BATTERY_PCT)
    expect(pct[events[0]!.k - 1]).toBeGreaterThanOrEqual(LOW_BATTERY_PCT)
  })

  it('test: a test event, as from the test button', () => {
    expect(eventsOf(run(smokeBehaviour('test', 1), 30)).map((e) => [e.k, e.type])).toEqual([[SMOKE_TIMELINE.test.pressed, 'test']])
  })
})

describe('alarm panel', () => {
  const POINT = /^[1-4]-\d{2}-\d{3}$/

  it('fire: a point goes to fire, restores, and the operator resets the panel', () => {
    const t = PANEL_TIMELINE.fire
    const events = eventsOf(run(panelBehaviour('fire', 7), 40))
    expect(events.map((e) => [e.k, e.type])).toEqual([
      [t.alarm, 'fire'],
      [t.restore, 'restore'],
      [t.reset, 'reset']
    ])
    expect(events[0]!.point).toMatch(POINT)
    expect(events[0]!.text).toMatch(/^\d+F /)
    expect(events[1]!.point).toBe(events[0]!.point)
  })

  it('fault and isolate each restore the same point', () => {
    for (const scenario of ['fault', 'isolate'] as const) {
      const events = eventsOf(run(panelBehaviour(scenario, 3), 40))
      expect(events.map((e) => e.type)).toEqual([scenario, 'restore'])
      expect(events[0]!.point).toMatch(POINT)
      expect(events[1]!.point).toBe(events[0]!.point)
    }
  })

  it('power-fault: mains at 0 V, battery sags under its 21.6 V safe minimum, then mains and charge return', () => {
    const t = PANEL_TIMELINE.powerFault
    const steps = run(panelBehaviour('power-fault', 5), 40)
    expect(eventsOf(steps).map((e) => [e.k, e.type])).toEqual([
      [t.fail, 'power_fault'],
      [t.restore, 'restore']
    ])
    for (let k = t.fail; k < t.restore; k++) expect(steps[k]!.values.main_power_v).toBe(0)
    expect(steps[t.restore - 1]!.values.backup_battery_v).toBeLessThan(21.6)
    expect(steps[t.restore]!.values.main_power_v).toBeGreaterThan(200)
    expect(steps[39]!.values.backup_battery_v).toBeCloseTo(FLOAT_V, 1)
  })

  it('storm: dozens of distinct points in alarm or fault within three steps, all restored, then reset', () => {
    const t = PANEL_TIMELINE.storm
    const events = eventsOf(run(panelBehaviour('storm', 9), 40))
    const burst = events.filter((e) => e.type === 'fire' || e.type === 'fault')
    expect(burst).toHaveLength(t.points)
    expect(new Set(burst.map((e) => e.k))).toEqual(new Set(t.burst))
    expect(new Set(burst.map((e) => e.point)).size).toBe(t.points)
    expect(burst.some((e) => e.type === 'fire')).toBe(true)
    const restored = new Set(events.filter((e) => e.type === 'restore' && e.point).map((e) => e.point))
    expect(restored).toEqual(new Set(burst.map((e) => e.point)))
    expect(events.at(-1)!.type).toBe('reset')
  })

  it('quiet raises nothing; random mixes several kinds of events', () => {
    expect(eventsOf(run(panelBehaviour('quiet', 1), 500))).toEqual([])
    const kinds = new Set(eventsOf(run(panelBehaviour('random', 11), 40 * PANEL_TIMELINE.randomEpisode)).map((e) => e.type))
    expect(kinds.size).toBeGreaterThanOrEqual(4)
  })
})

describe('every scenario', () => {
  const profiles = loadProfiles(path.join(projectRoot, 'devices'))
  const all: [string, readonly string[], (s: string, seed: number) => Behaviour][] = [
    ['sprinkler_pressure', SPRINKLER_SCENARIOS, (s, seed) => sprinklerBehaviour(s as never, seed)],
    ['smoke_detector', SMOKE_SCENARIOS, (s, seed) => smokeBehaviour(s as never, seed)],
    ['alarm_panel', PANEL_SCENARIOS, (s, seed) => panelBehaviour(s as never, seed)]
  ]

  it.each(all)('%s: passes the server validation at every step (metrics, ranges, event classes)', (kind, scenarios, make) => {
    const profile = profiles.get(kind)!
    const device = { deviceId: 'sim-1', unitId: 'unit-1', profile: kind }
    for (const scenario of scenarios) {
      run(make(scenario, 5), 300).forEach((s, k) => {
        const telemetry = normalize(device, profile, 'telemetry', Buffer.from(JSON.stringify({ ts: 1, seq: k, values: s.values })), 2)
        expect(telemetry, `${scenario} step ${k}`).toMatchObject({ ok: true })
        if (s.events.length > 0) {
          const items = s.events.map((e, i) => ({ ts: 1, seq: 1000 + i, ...e }))
          expect(normalize(device, profile, 'event', Buffer.from(JSON.stringify(items)), 2), `${scenario} step ${k}`).toMatchObject({ ok: true })
        }
      })
    }
  })

  it.each(all)('%s: the same seed replays the same run; another seed differs', (_kind, scenarios, make) => {
    for (const scenario of scenarios) {
      expect(run(make(scenario, 123), 200)).toEqual(run(make(scenario, 123), 200))
      expect(run(make(scenario, 123), 200)).not.toEqual(run(make(scenario, 124), 200))
    }
  })
})
