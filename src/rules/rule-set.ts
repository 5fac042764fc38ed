/**
 * Loads rules/*.yaml into a RuleSet: rules compiled into condition trees, per-unit and per-device overrides, and the
 * correlation settings. An invalid file stops start-up with a message naming the file, the rule and the field.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import type { TSchema } from '@sinclair/typebox'
import {
  DeadmanLeaf,
  EventLeaf,
  FalseAlarmsLeaf,
  IsolationExpiredLeaf,
  LEAF_KINDS,
  RateLeaf,
  RuleFile,
  ThresholdLeaf,
  type CorrelationSpec,
  type OverrideSpec,
  type RuleSpec
} from '../../schemas/rules.js'
import type { EventType } from '../../schemas/device-payloads.js'
import type { AlertClass, Severity, TroubleType } from '../../schemas/alerts.js'
import type { DeviceKind } from '../../schemas/device-profile.js'
import type { ProfileMap } from '../ingest/profiles.js'
import { ajv, describeErrors } from '../validation.js'
import { FirewatchError } from '../errors.js'

export type Condition =
  | { kind: 'event'; id: string; types: ReadonlySet<EventType>; clearOn: ReadonlySet<EventType>; text: RegExp | null }
  | { kind: 'threshold'; id: string; metric: string; dir: 'below' | 'above'; limit: number; clear: number }
  | { kind: 'rate'; id: string; metric: string; dir: 'falls' | 'rises'; by: number; withinMs: number; holdMs: number }
  | { kind: 'deadman'; id: string; afterS: number | null }
  | { kind: 'isolationExpired'; id: string }
  | { kind: 'falseAlarms'; id: string; moreThan: number; withinS: number }
  | { kind: 'all' | 'any'; id: string; of: Condition[] }

export interface CompiledRule {
  id: string
  title: string
  titleZh: string | null
  class: AlertClass
  troubleType: TroubleType | null
  severity: Severity
  /** Null: every kind. */
  kinds: ReadonlySet<DeviceKind> | null
  when: Condition
  forMs: number
  escalate: boolean
  isolationExpiryS: number
  enabled: boolean
  /** Alerts are per panel point: the condition contains an event leaf. */
  perPoint: boolean
  /** Metrics and event types the condition looks at, to skip rules a message cannot affect. */
  metrics: ReadonlySet<string>
  eventTypes: ReadonlySet<EventType>
  /** The rule's deadman leaf, if it has one (found by the silence sweep). */
  deadman: { afterS: number | null } | null
  /** Checked per unit by the sweeps, not per device message (isolationExpired, falseAlarms). */
  unitLevel: boolean
}

const DEFAULT_CLEAR_ON: EventType[] = ['restore', 'reset']

export class RuleSet {
  readonly byId: ReadonlyMap<string, CompiledRule>
  private readonly byKind = new Map<string, CompiledRule[]>()
  private readonly overridden = new Map<string, CompiledRule[]>()

  constructor(
    readonly rules: readonly CompiledRule[],
    /** `u:{unitId}` / `d:{deviceId}` → rule id → the rule with the override applied. */
    private readonly overrides: ReadonlyMap<string, ReadonlyMap<string, CompiledRule>>,
    readonly correlation: CorrelationSpec | null
  ) {
    this.byId = new Map(rules.map((r) => [r.id, r]))
  }

  /** The enabled device rules for one device, overrides applied (device over unit over file). */
  forDevice(kind: string, unitId: string, deviceId: string): CompiledRule[] {
    const u = this.overrides.get(`u:${unitId}`)
    const d = this.overrides.get(`d:${deviceId}`)
    if (!u && !d) {
      let list = this.byKind.get(kind)
      if (!list) {
        list = this.rules.filter((r) => r.enabled && !r.unitLevel && (!r.kinds || r.kinds.has(kind as DeviceKind)))
        this.byKind.set(kind, list)
      }
      return list
    }
    const key = `${kind}|${unitId}|${deviceId}`
    let list = this.overridden.get(key)
    if (!list) {
      list = this.rules
        .map((r) => d?.get(r.id) ?? u?.get(r.id) ?? r)
        .filter((r) => r.enabled && !r.unitLevel && (!r.kinds || r.kinds.has(kind as DeviceKind)))
      this.overridden.set(key, list)
    }
    return list
  }

  /** A rule as it applies to one unit (unit overrides only): for unit-level rules and timers. */
  forUnit(ruleId: string, unitId: string): CompiledRule | null {
    const r = this.overrides.get(`u:${unitId}`)?.get(ruleId) ?? this.byId.get(ruleId)
    return r && r.enabled ? r : null
  }

  /** A rule as it applies to one device (for timers that fire later). */
  rule(ruleId: string, unitId: string, deviceId: string): CompiledRule | null {
    const r = this.overrides.get(`d:${deviceId}`)?.get(ruleId) ?? this.overrides.get(`u:${unitId}`)?.get(ruleId) ?? this.byId.get(ruleId)
    return r && r.enabled ? r : null
  }

  /** The shortest silence any deadman rule (overrides included) waits for, given the profiles' patrol periods. */
  minDeadmanS(patrolPeriodsS: number[]): number | null {
    const all = [...this.rules, ...[...this.overrides.values()].flatMap((m) => [...m.values()])].filter((r) => r.enabled && r.deadman)
    if (all.length === 0) return null
    return Math.min(...all.map((r) => r.deadman!.afterS ?? Math.min(...patrolPeriodsS)))
  }

  /** The rules of a class of leaf, file versions (the sweeps use them). */
  withLeaf(kind: Condition['kind']): CompiledRule[] {
    return this.rules.filter((r) => r.enabled && leaves(r.when).some((l) => l.kind === kind))
  }
}

export function leaves(c: Condition): Condition[] {
  return c.kind === 'all' || c.kind === 'any' ? c.of.flatMap(leaves) : [c]
}

class RuleError extends Error {}

const leafValidators = new Map<string, ReturnType<typeof ajv.compile>>()
function check(schema: TSchema, value: unknown, where: string): void {
  const key = JSON.stringify(schema)
  let v = leafValidators.get(key)
  if (!v) {
    v = ajv.compile(schema)
    leafValidators.set(key, v)
  }
  if (!v(value)) throw new RuleError(`${where}${describeErrors(v.errors).replace(/^\(root\)/, '')}`.replace(/\//g, '.'))
}

function compileCondition(raw: unknown, where: string, profiles: ProfileMap, kinds: ReadonlySet<DeviceKind> | null): Condition {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RuleError(`${where} must be an object with one condition`)
  const keys = Object.keys(raw)
  const allowed = [...LEAF_KINDS, 'all', 'any']
  if (keys.length !== 1 || !allowed.includes(keys[0]!)) {
    throw new RuleError(`${where} must have exactly one of ${allowed.join(', ')} (has ${keys.join(', ') || 'none'})`)
  }
  const kind = keys[0] as (typeof allowed)[number]
  let body = (raw as Record<string, unknown>)[kind]
  const at = `${where}.${kind}`
  switch (kind) {
    case 'all':
    case 'any': {
      if (!Array.isArray(body) || body.length < 1) throw new RuleError(`${at} must be a list of at least one condition`)
      const of = body.map((c, i) => compileCondition(c, `${at}.${i}`, profiles, kinds))
      if (of.some((c) => c.kind === 'isolationExpired' || c.kind === 'falseAlarms')) {
        throw new RuleError(`${at}: isolationExpired and falseAlarms are unit checks and stand alone in when`)
      }
      return { kind, id: at, of }
    }
    case 'event': {
      // Shorthands: `event: fire` and `event: [fire, supervisory]`.
      if (typeof body === 'string') body = { types: [body] }
      else if (Array.isArray(body)) body = { types: body }
      check(EventLeaf, body, at)
      const e = body as EventLeaf
      let text: RegExp | null = null
      if (e.textMatches) {
        try {
          text = new RegExp(e.textMatches, 'iu')
        } catch (err) {
          throw new RuleError(`${at}.textMatches is not a valid regular expression: ${(err as Error).message}`)
        }
      }
      const clearOn = new Set(e.clearOn ?? DEFAULT_CLEAR_ON)
      const both = e.types.filter((t) => clearOn.has(t))
      if (both.length) throw new RuleError(`${at}: ${both.join(', ')} both raises and clears`)
      return { kind, id: at, types: new Set(e.types), clearOn, text }
    }
    case 'threshold': {
      check(ThresholdLeaf, body, at)
      const t = body as ThresholdLeaf
      if ((t.below === undefined) === (t.above === undefined)) throw new RuleError(`${at} needs exactly one of below, above`)
      checkMetric(t.metric, `${at}.metric`, profiles, kinds)
      const dir = t.below !== undefined ? 'below' : 'above'
      const limit = (t.below ?? t.above)!
      const clear = t.clear ?? limit
      if (dir === 'below' && clear < limit) throw new RuleError(`${at}.clear (${clear}) must be at or above below (${limit})`)
      if (dir === 'above' && clear > limit) throw new RuleError(`${at}.clear (${clear}) must be at or below above (${limit})`)
      return { kind, id: at, metric: t.metric, dir, limit, clear }
    }
    case 'rate': {
      check(RateLeaf, body, at)
      const r = body as RateLeaf
      if ((r.fallsBy === undefined) === (r.risesBy === undefined)) throw new RuleError(`${at} needs exactly one of fallsBy, risesBy`)
      checkMetric(r.metric, `${at}.metric`, profiles, kinds)
      return {
        kind,
        id: at,
        metric: r.metric,
        dir: r.fallsBy !== undefined ? 'falls' : 'rises',
        by: (r.fallsBy ?? r.risesBy)!,
        withinMs: r.withinS * 1000,
        holdMs: (r.holdS ?? r.withinS) * 1000
      }
    }
    case 'deadman': {
      body ??= {}
      check(DeadmanLeaf, body, at)
      return { kind, id: at, afterS: (body as DeadmanLeaf).afterS ?? null }
    }
    case 'isolationExpired':
      body ??= {}
      check(IsolationExpiredLeaf, body, at)
      return { kind, id: at }
    case 'falseAlarms': {
      check(FalseAlarmsLeaf, body, at)
      const f = body as FalseAlarmsLeaf
      return { kind, id: at, moreThan: f.moreThan, withinS: f.withinS }
    }
  }
  throw new RuleError(`${where}: unknown condition`)
}

function checkMetric(metric: string, where: string, profiles: ProfileMap, kinds: ReadonlySet<DeviceKind> | null): void {
  const candidates = [...profiles.values()].filter((p) => !kinds || kinds.has(p.kind))
  if (!candidates.some((p) => metric in p.metrics)) {
    throw new RuleError(`${where}: no profile${kinds ? ` of kind ${[...kinds].join('/')}` : ''} has a metric ${metric}`)
  }
}

function compileRule(spec: RuleSpec, profiles: ProfileMap): CompiledRule {
  if (spec.class === 'trouble' && !spec.troubleType) throw new RuleError('troubleType is required for class trouble')
  if (spec.class !== 'trouble' && spec.troubleType) throw new RuleError(`troubleType is only for class trouble (class is ${spec.class})`)
  const kinds = spec.kinds ? new Set(spec.kinds) : null
  const when = compileCondition(spec.when, 'when', profiles, kinds)
  return finish(spec, when, kinds)
}

function finish(spec: RuleSpec, when: Condition, kinds: ReadonlySet<DeviceKind> | null): CompiledRule {
  const all = leaves(when)
  const unitLevel = when.kind === 'isolationExpired' || when.kind === 'falseAlarms'
  const deadman = all.find((l) => l.kind === 'deadman') as { afterS: number | null } | undefined
  if (deadman && all.length > 1) throw new RuleError('when: a deadman condition stands alone (silence has no value to combine)')
  return {
    id: spec.id,
    title: spec.title,
    titleZh: spec.titleZh ?? null,
    class: spec.class,
    troubleType: spec.troubleType ?? null,
    severity: spec.severity,
    kinds,
    when,
    forMs: (spec.forS ?? 0) * 1000,
    escalate: spec.escalate ?? spec.class === 'fire',
    isolationExpiryS: spec.isolationExpiryS ?? 86400,
    enabled: spec.enabled ?? true,
    perPoint: all.some((l) => l.kind === 'event'),
    metrics: new Set(all.flatMap((l) => (l.kind === 'threshold' || l.kind === 'rate' ? [l.metric] : []))),
    eventTypes: new Set(all.flatMap((l) => (l.kind === 'event' ? [...l.types, ...l.clearOn] : []))),
    deadman: deadman ?? null,
    unitLevel
  }
}

const validateFile = ajv.compile(RuleFile)

/** Parse and check one rule file's text; `source` names it in errors. */
export function parseRuleFile(text: string, source: string): { rules: RuleSpec[]; overrides: OverrideSpec[]; correlation: CorrelationSpec | null } {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw new FirewatchError('FW_ERR_RULES', `${source}: not valid YAML: ${(err as Error).message}`)
  }
  doc ??= {}
  if (!validateFile(doc)) {
    const e = validateFile.errors?.[0]
    const m = /^\/rules\/(\d+)(.*)$/.exec(e?.instancePath ?? '')
    const d = doc as { rules?: { id?: unknown }[] }
    if (m) {
      const id = d.rules?.[Number(m[1])]?.id
      const field = (m[2] ?? '').replace(/^\//, '').replace(/\//g, '.') || '(rule)'
      const detail = describeErrors(validateFile.errors).replace(e!.instancePath, '').trim()
      throw new FirewatchError('FW_ERR_RULES', `${source}: rule ${typeof id === 'string' ? id : `#${Number(m[1]) + 1}`}: ${field} ${detail}`)
    }
    throw new FirewatchError('FW_ERR_RULES', `${source}: ${describeErrors(validateFile.errors)}`)
  }
  const f = doc as { rules?: RuleSpec[]; overrides?: OverrideSpec[]; correlation?: CorrelationSpec }
  return { rules: f.rules ?? [], overrides: f.overrides ?? [], correlation: f.correlation ?? null }
}

/** Build a RuleSet from parsed files; every cross-reference is checked here. */
export function buildRuleSet(files: { source: string; rules: RuleSpec[]; overrides: OverrideSpec[]; correlation: CorrelationSpec | null }[], profiles: ProfileMap): RuleSet {
  const rules: CompiledRule[] = []
  const specs = new Map<string, RuleSpec>()
  const seen = new Map<string, string>()
  let correlation: { source: string; spec: CorrelationSpec } | null = null
  for (const f of files) {
    for (const spec of f.rules) {
      const first = seen.get(spec.id)
      if (first) throw new FirewatchError('FW_ERR_RULES', `${f.source}: rule ${spec.id} is already defined in ${first}`)
      seen.set(spec.id, f.source)
      try {
        rules.push(compileRule(spec, profiles))
      } catch (err) {
        if (err instanceof RuleError) throw new FirewatchError('FW_ERR_RULES', `${f.source}: rule ${spec.id}: ${err.message}`)
        throw err
      }
      specs.set(spec.id, spec)
    }
    if (f.correlation) {
      if (correlation) throw new FirewatchError('FW_ERR_RULES', `${f.source}: correlation is already set in ${correlation.source}`)
      correlation = { source: f.source, spec: f.correlation }
    }
  }
  if (correlation) {
    for (const field of ['verify', 'confirmBy'] as const) {
      for (const id of correlation.spec[field]) {
        if (!specs.has(id)) throw new FirewatchError('FW_ERR_RULES', `${correlation.source}: correlation.${field} names an unknown rule ${id}`)
      }
    }
  }
  const overrides = new Map<string, Map<string, CompiledRule>>()
  for (const f of files) {
    f.overrides.forEach((o, i) => {
      const where = `${f.source}: override #${i + 1} of rule ${o.rule}`
      const spec = specs.get(o.rule)
      if (!spec) throw new FirewatchError('FW_ERR_RULES', `${where}: no such rule`)
      if ((o.unit === undefined) === (o.device === undefined)) throw new FirewatchError('FW_ERR_RULES', `${where}: needs exactly one of unit, device`)
      const merged: RuleSpec = {
        ...spec,
        ...(o.enabled !== undefined ? { enabled: o.enabled } : {}),
        ...(o.severity ? { severity: o.severity } : {}),
        ...(o.forS !== undefined ? { forS: o.forS } : {}),
        ...(o.when !== undefined ? { when: o.when } : {})
      }
      let compiled: CompiledRule
      try {
        compiled = compileRule(merged, profiles)
      } catch (err) {
        if (err instanceof RuleError) throw new FirewatchError('FW_ERR_RULES', `${where}: ${err.message}`)
        throw err
      }
      if (compiled.unitLevel !== rules.find((r) => r.id === o.rule)!.unitLevel) {
        throw new FirewatchError('FW_ERR_RULES', `${where}: when cannot turn a device rule into a unit check or back`)
      }
      if (o.device && compiled.unitLevel) throw new FirewatchError('FW_ERR_RULES', `${where}: ${o.rule} is a unit check; override it per unit`)
      const key = o.unit !== undefined ? `u:${o.unit}` : `d:${o.device!}`
      let m = overrides.get(key)
      if (!m) overrides.set(key, (m = new Map()))
      if (m.has(o.rule)) throw new FirewatchError('FW_ERR_RULES', `${where}: ${key.startsWith('u') ? 'unit' : 'device'} ${o.unit ?? o.device} already has an override of this rule`)
      m.set(o.rule, compiled)
    })
  }
  return new RuleSet(rules, overrides, correlation?.spec ?? null)
}

/** Load every rules/*.yaml of a folder (sorted by name). */
export function loadRules(dir: string, profiles: ProfileMap): RuleSet {
  let names: string[]
  try {
    names = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
  } catch (err) {
    throw new FirewatchError('FW_ERR_RULES', `cannot read rule files from ${dir}: ${(err as Error).message}`)
  }
  if (names.length === 0) throw new FirewatchError('FW_ERR_RULES', `no rule files in ${dir}`)
  const files = names.map((name) => ({ source: name, ...parseRuleFile(readFileSync(path.join(dir, name), 'utf8'), name) }))
  return buildRuleSet(files, profiles)
}
