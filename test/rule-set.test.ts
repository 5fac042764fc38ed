/** Rule files: what is refused and how the message names it; overrides; the evaluator's state machine (pure). */
import { describe, expect, it } from 'vitest'
import path from 'node:path'
import { loadProfiles } from '../src/ingest/profiles.js'
import { buildRuleSet, loadRules, parseRuleFile, type RuleSet } from '../src/rules/rule-set.js'
import { evaluate, markSilent, newDeviceState, restoreState, dirtyFields, timerFired } from '../src/rules/evaluator.js'
import type { IngestMessage } from '../src/ingest/types.js'

const profiles = loadProfiles(path.join(import.meta.dirname, '..', 'devices'))
const build = (yaml: string, source = 'test.yaml'): RuleSet => buildRuleSet([{ source, ...parseRuleFile(yaml, source) }], profiles)
const rule = (body: string) => `rules:\n  - id: r1\n    title: R1\n    class: supervisory\n    severity: major\n${body}`

describe('rule files', () => {
  it('loads the shipped defaults', () => {
    const rs = loadRules(path.join(import.meta.dirname, '..', 'rules'), profiles)
    expect(rs.byId.get('pressure_low')).toMatchObject({ forMs: 120_000, class: 'supervisory' })
    expect(rs.forDevice('sprinkler_pressure', 'u', 'd').map((r) => r.id)).toContain('pressure_fast_drop')
    expect(rs.forDevice('sprinkler_pressure', 'u', 'd').map((r) => r.id)).not.toContain('fire_event')
  })

  it.each([
    ['a threshold with both limits', rule('    when: { threshold: { metric: pressure_mpa, below: 0.05, above: 1.2 } }'), /rule r1: when\.threshold needs exactly one of below, above/],
    ['a clear level on the wrong side', rule('    when: { threshold: { metric: pressure_mpa, below: 0.05, clear: 0.04 } }'), /rule r1: when\.threshold\.clear \(0\.04\) must be at or above below/],
    ['a metric no profile has', rule('    kinds: [smoke_detector]\n    when: { threshold: { metric: pressure_mpa, below: 1 } }'), /rule r1: when\.threshold\.metric: no profile of kind smoke_detector has a metric pressure_mpa/],
    ['an unknown event type', rule('    when: { event: blaze }'), /rule r1: when\.event\.types\.0 must be equal to one of|rule r1: when\.event/],
    ['a misspelt field inside a leaf', rule('    when: { threshold: { metric: pressure_mpa, bellow: 0.05 } }'), /rule r1: when\.threshold has unknown field "bellow"/],
    ['two conditions in one object', rule('    when: { event: fire, deadman: {} }'), /rule r1: when must have exactly one of/],
    ['a nested bad leaf', rule('    when: { any: [ { event: fire }, { rate: { metric: pressure_mpa, withinS: 60 } } ] }'), /rule r1: when\.any\.1\.rate needs exactly one of fallsBy, risesBy/],
    ['a trouble without its type', 'rules:\n  - { id: r2, title: T, class: trouble, severity: minor, when: { event: fault } }', /rule r2: troubleType is required/],
    ['an unknown field of a rule', rule('    when: { event: fire }\n    forSeconds: 3'), /rule r1: \(rule\) has unknown field "forSeconds"/],
    ['a wrong type of a rule field', rule('    when: { event: fire }\n    forS: soon'), /rule r1: forS must be integer/],
    ['a bad regular expression', rule('    when: { event: { types: [feedback], textMatches: "(" } }'), /rule r1: when\.event\.textMatches is not a valid regular expression/]
  ])('refuses %s, naming the rule and field', (_what, yaml, message) => {
    expect(() => build(yaml)).toThrow(message)
  })

  it('refuses a rule defined twice, an override of an unknown rule and an override without a target', () => {
    const one = rule('    when: { event: fire }')
    expect(() => buildRuleSet([{ source: 'a.yaml', ...parseRuleFile(one, 'a.yaml') }, { source: 'b.yaml', ...parseRuleFile(one, 'b.yaml') }], profiles)).toThrow(
      /b\.yaml: rule r1 is already defined in a\.yaml/
    )
    expect(() => build(`${one}\noverrides:\n  - { rule: nope, unit: u1, enabled: false }`)).toThrow(/override #1 of rule nope: no such rule/)
    expect(() => build(`${one}\noverrides:\n  - { rule: r1, enabled: false }`)).toThrow(/needs exactly one of unit, device/)
  })

  it('applies a device override over a unit override over the file', () => {
    const rs = build(
      rule('    kinds: [sprinkler_pressure]\n    when: { threshold: { metric: pressure_mpa, below: 0.05 } }\n    forS: 120') +
        '\noverrides:\n  - { rule: r1, unit: u1, forS: 30 }\n  - { rule: r1, device: d9, when: { threshold: { metric: pressure_mpa, below: 0.1 } } }\n  - { rule: r1, unit: u2, enabled: false }'
    )
    expect(rs.forDevice('sprinkler_pressure', 'u0', 'd0')[0]!.forMs).toBe(120_000)
    expect(rs.forDevice('sprinkler_pressure', 'u1', 'd0')[0]!.forMs).toBe(30_000)
    expect(rs.forDevice('sprinkler_pressure', 'u1', 'd9')[0]!.when).toMatchObject({ kind: 'threshold', limit: 0.1 })
    expect(rs.forDevice('sprinkler_pressure', 'u2', 'd0')).toEqual([])
  })
})

const telemetry = (values: Record<string, number>, ts: number): IngestMessage => ({ deviceId: 'd', unitId: 'u', kind: 'sprinkler_pressure', rx: ts, type: 'telemetry', items: [{ ts, values }] })
const ev = (type: string, point: string | undefined, ts: number): IngestMessage =>
  ({ deviceId: 'd', unitId: 'u', kind: 'alarm_panel', rx: ts, type: 'event', items: [{ ts, type, ...(point !== undefined ? { point } : {}) }] }) as IngestMessage

describe('evaluator', () => {
  const rs = build(
    [
      'rules:',
      '  - { id: high, title: H, class: supervisory, severity: major, kinds: [sprinkler_pressure], when: { threshold: { metric: pressure_mpa, above: 1.2, clear: 1.15 } } }',
      '  - { id: low, title: L, class: supervisory, severity: major, kinds: [sprinkler_pressure], when: { threshold: { metric: pressure_mpa, below: 0.05, clear: 0.06 } }, forS: 120 }',
      '  - { id: drop, title: D, class: supervisory, severity: major, kinds: [sprinkler_pressure], when: { rate: { metric: pressure_mpa, fallsBy: 0.05, withinS: 60, holdS: 60 } } }',
      '  - { id: fire, title: F, class: fire, severity: critical, when: { event: fire } }',
      '  - { id: quiet, title: Q, class: trouble, troubleType: communication_loss, severity: major, when: { deadman: {} } }',
      '  - { id: both, title: B, class: supervisory, severity: major, kinds: [sprinkler_pressure], when: { all: [ { threshold: { metric: pressure_mpa, below: 0.2 } }, { threshold: { metric: temperature_c, above: 60 } } ] } }'
    ].join('\n')
  )
  const pressureRules = rs.forDevice('sprinkler_pressure', 'u', 'd')
  const panelRules = rs.forDevice('alarm_panel', 'u', 'd')
  const kinds = (effects: { type: string; rule: { id: string } }[], only?: string) =>
    effects.filter((e) => !only || e.rule.id === only).map((e) => `${e.type}:${e.rule.id}`)

  it('raises once past the limit and clears only back past the clear level', () => {
    const s = newDeviceState('d')
    const out: string[] = []
    for (const [i, v] of [1.1, 1.21, 1.19, 1.21, 1.16, 1.3, 1.15, 1.21].entries()) out.push(...kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: v }, i * 1000)), 'high'))
    expect(out).toEqual(['raise:high', 'clear:high', 'raise:high'])
  })

  it('holds a duration rule pending, cancels it on restore, raises only for the same start', () => {
    const s = newDeviceState('d')
    const start = kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: 0.04 }, 1000)))
    expect(start).toEqual(['startTimer:low'])
    const low = pressureRules.find((r) => r.id === 'low')!
    expect(timerFired(s, low, '', 999, 200_000)).toEqual([])
    expect(kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: 0.055 }, 2000)))).toEqual([]) // not past the clear level
    expect(kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: 0.3 }, 3000)))).toEqual(['cancelTimer:low'])
    expect(timerFired(s, low, '', 1000, 200_000)).toEqual([])
  })

  it('sees a fast drop within the window, not a slow one, and holds it', () => {
    const slow = newDeviceState('d')
    const out: string[] = []
    for (let i = 0; i < 10; i++) out.push(...kinds(evaluate(slow, pressureRules, telemetry({ pressure_mpa: 0.4 - i * 0.01 }, i * 30_000))))
    expect(out).toEqual([])
    const fast = newDeviceState('d')
    expect(kinds(evaluate(fast, pressureRules, telemetry({ pressure_mpa: 0.4 }, 0)))).toEqual([])
    expect(kinds(evaluate(fast, pressureRules, telemetry({ pressure_mpa: 0.33 }, 20_000)))).toEqual(['raise:drop'])
    expect(kinds(evaluate(fast, pressureRules, telemetry({ pressure_mpa: 0.33 }, 50_000)))).toEqual([])
    // Held 60 s from the last reading that still saw the drop within its window (0.4 at 0 s, 0.33 at 50 s).
    expect(kinds(evaluate(fast, pressureRules, telemetry({ pressure_mpa: 0.33 }, 90_000)))).toEqual([])
    expect(kinds(evaluate(fast, pressureRules, telemetry({ pressure_mpa: 0.33 }, 120_000)))).toEqual(['clear:drop'])
  })

  it('keeps event alerts per point; a restore clears its point, a reset without a point clears all', () => {
    const s = newDeviceState('d')
    expect(kinds(evaluate(s, panelRules, ev('fire', 'p1', 1)))).toEqual(['raise:fire'])
    // The same alarm again: raised again (the open alert ignores it; a resolved one is not swallowed).
    expect(kinds(evaluate(s, panelRules, ev('fire', 'p1', 2)))).toEqual(['raise:fire'])
    expect(kinds(evaluate(s, panelRules, ev('fire', 'p2', 3)))).toEqual(['raise:fire'])
    expect(kinds(evaluate(s, panelRules, ev('restore', 'p1', 4)))).toEqual(['clear:fire'])
    expect(kinds(evaluate(s, panelRules, ev('fire', 'p|3', 5)))).toEqual(['raise:fire'])
    const reset = evaluate(s, panelRules, ev('reset', undefined, 6))
    expect(reset.map((e) => e.point).sort()).toEqual(['p2', 'p|3'])
  })

  it('lets a device leaf qualify a point inside all, but in any speaks only for the device', () => {
    const mixed = build(
      [
        'rules:',
        '  - { id: batt, title: B, class: trouble, troubleType: low_battery, severity: minor, when: { any: [ { event: low_battery }, { threshold: { metric: battery_pct, below: 20, clear: 25 } } ] } }',
        '  - { id: both, title: B2, class: supervisory, severity: major, when: { all: [ { event: fault }, { threshold: { metric: battery_pct, below: 20, clear: 25 } } ] } }'
      ].join('\n')
    ).forDevice('smoke_detector', 'u', 'd')
    const s = newDeviceState('d')
    const det = (m: IngestMessage) => evaluate(s, mixed, { ...m, kind: 'smoke_detector' } as IngestMessage).map((e) => `${e.type}:${e.rule.id}@${e.point}`)
    expect(det(ev('low_battery', 'X', 1))).toEqual(['raise:batt@X'])
    expect(det(ev('fault', 'Y', 2))).toEqual([])
    expect(det(telemetry({ battery_pct: 10 }, 3)).sort()).toEqual(['raise:batt@', 'raise:both@Y'])
    // The point's own event ended: its alert clears although the battery is still low (the device's alert stays).
    expect(det(ev('restore', 'X', 4))).toEqual(['clear:batt@X'])
    expect(det(telemetry({ battery_pct: 30 }, 5)).sort()).toEqual(['clear:batt@', 'clear:both@Y'])
  })

  it('combines leaves with all', () => {
    const s = newDeviceState('d')
    expect(kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: 0.1 }, 1)))).toEqual([])
    expect(kinds(evaluate(s, pressureRules, telemetry({ temperature_c: 70 }, 2)))).toEqual(['raise:both'])
    expect(kinds(evaluate(s, pressureRules, telemetry({ pressure_mpa: 0.3 }, 3)))).toEqual(['clear:both'])
  })

  it('raises silence once and clears it on any message', () => {
    const s = newDeviceState('d')
    const quiet = panelRules.find((r) => r.id === 'quiet')!
    expect(kinds(markSilent(s, quiet, 0, 10_000))).toEqual(['raise:quiet'])
    expect(markSilent(s, quiet, 0, 20_000)).toEqual([])
    expect(kinds(evaluate(s, panelRules, ev('test', '', 30_000)))).toEqual(['clear:quiet'])
  })

  it('survives a save and restore of its state', () => {
    const s = newDeviceState('d')
    evaluate(s, pressureRules, telemetry({ pressure_mpa: 1.3 }, 1))
    const hash: Record<string, string> = {}
    for (const [f, v] of dirtyFields(s)) if (v !== null) hash[f] = v
    const back = restoreState('d', hash)
    // Still raised after the restart: the same value changes nothing, the clear level clears it.
    expect(kinds(evaluate(back, pressureRules, telemetry({ pressure_mpa: 1.3 }, 2)), 'high')).toEqual([])
    expect(kinds(evaluate(back, pressureRules, telemetry({ pressure_mpa: 1.0 }, 3)), 'high')).toEqual(['clear:high'])
  })
})
