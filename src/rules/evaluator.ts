/**
 * The per-device rule state machine. Pure: given a device's state and one message, it updates the state and says
 * what happened (an alert raised or cleared, a duration timer to start or cancel). The engine does the I/O.
 *
 * Leaves hold their own state: an event leaf is active per panel point from its event until a clearing event; a
 * threshold leaf is edge-triggered with hysteresis (raised past the limit, cleared only back past `clear`), so a
 * value oscillating around a limit changes nothing; a rate leaf holds after a fast change; a deadman leaf is set by
 * the silence sweep and dropped by any message. A rule's condition combines its leaves with all / any, and a rule
 * with `forS` waits in `pending` (a BullMQ delayed job) before it raises.
 */
import type { IngestMessage } from '../ingest/types.js'
import { leaves, type CompiledRule, type Condition } from './rule-set.js'

export interface RulePhase {
  phase: 'pending' | 'raised'
  /** When the condition began to hold, epoch ms (device time). */
  since: number
}

export interface DeviceState {
  deviceId: string
  /** Active leaves: `{rule}|{leaf}|{point}` → 1, or for a rate leaf the time its hold ends. */
  leaves: Map<string, number>
  /** Rules whose condition holds: `{rule}|{point}`. */
  rules: Map<string, RulePhase>
  /** Recent samples per metric for rate leaves (memory only: a restart needs a window of new samples). */
  samples: Map<string, { ts: number; v: number }[]>
  /** Keys of `leaves` (`L|…`) and `rules` (`R|…`) changed since the state was last saved. */
  dirty: Set<string>
  /**
   * The ingest-log entry id of the last message that changed this state, saved with the change: a batch evaluated
   * again after a failure skips what the saved state already contains, so no edge happens twice.
   */
  lastId: string | null
  /** The same for the events stream (events are read there, ahead of readings). */
  lastEventId: string | null
  /** Newest device time evaluated, and when its message was received (memory only). */
  lastTs: number
  lastRx: number
}

export type Effect =
  | { type: 'raise'; rule: CompiledRule; point: string; at: number; detail: Record<string, unknown> }
  | { type: 'clear'; rule: CompiledRule; point: string; at: number; detail: Record<string, unknown> }
  | { type: 'startTimer'; rule: CompiledRule; point: string; since: number; dueAt: number }
  | { type: 'cancelTimer'; rule: CompiledRule; point: string; since: number }

export function newDeviceState(deviceId: string): DeviceState {
  return { deviceId, leaves: new Map(), rules: new Map(), samples: new Map(), dirty: new Set(), lastId: null, lastEventId: null, lastTs: 0, lastRx: 0 }
}

const leafKey = (rule: CompiledRule, leaf: Condition, point: string) => `${rule.id}|${leaf.id}|${point}`
const ruleKey = (rule: CompiledRule, point: string) => `${rule.id}|${point}`

/** At most this many samples per metric (a device sending every second with a 60 s window needs 61). */
const MAX_SAMPLES = 512

/** Metric → the longest window a rate leaf of these rules looks back over: samples are kept for those only. */
const windowsOf = new WeakMap<readonly CompiledRule[], Map<string, number>>()
function rateWindows(rules: readonly CompiledRule[]): Map<string, number> {
  let w = windowsOf.get(rules)
  if (!w) {
    w = new Map()
    for (const r of rules) for (const l of leaves(r.when)) if (l.kind === 'rate') w.set(l.metric, Math.max(w.get(l.metric) ?? 0, l.withinMs))
    windowsOf.set(rules, w)
  }
  return w
}

/** Evaluate one message. `rules` are the device's (overrides applied). Returns what changed, in order. */
export function evaluate(state: DeviceState, rules: readonly CompiledRule[], message: IngestMessage): Effect[] {
  const effects: Effect[] = []
  state.lastRx = Math.max(state.lastRx, message.rx)
  // Any message is a sign of life and ends a silence, except a will: `offline` is the device saying it is gone.
  const alive = !(message.type === 'status' && message.items.every((i) => i.status === 'offline'))
  for (const rule of rules) {
    if (!alive) break
    if (!rule.deadman) continue
    const leaf = rule.when
    if (state.leaves.has(leafKey(rule, leaf, ''))) {
      setLeaf(state, leafKey(rule, leaf, ''), null)
      recompute(state, rule, '', message.rx, effects, { reason: 'heard from again', kind: message.type })
    }
  }
  if (message.type === 'telemetry') {
    const items = [...message.items].sort((a, b) => (a.ts ?? message.rx) - (b.ts ?? message.rx))
    for (const item of items) {
      const ts = item.ts ?? message.rx
      const windows = rateWindows(rules)
      for (const [metric, v] of Object.entries(item.values)) {
        const keep = windows.get(metric)
        if (keep !== undefined) addSample(state, metric, ts, v, keep)
      }
      for (const rule of rules) {
        let touched = false
        for (const leaf of leaves(rule.when)) {
          if ((leaf.kind === 'threshold' || leaf.kind === 'rate') && leaf.metric in item.values) {
            touched = updateMetricLeaf(state, rule, leaf, ts, item.values[leaf.metric]!) || touched
          }
        }
        // A rate leaf can also end by its hold running out, without a value of its own crossing anything.
        if (touched || hasRateHold(rule)) {
          const detail = metricDetail(rule, item.values)
          for (const point of points(state, rule)) recompute(state, rule, point, ts, effects, detail)
        }
      }
      duePending(state, rules, ts, effects)
    }
  } else if (message.type === 'event') {
    const items = [...message.items].sort((a, b) => (a.ts ?? message.rx) - (b.ts ?? message.rx))
    for (const ev of items) {
      const ts = ev.ts ?? message.rx
      const point = ev.point ?? ''
      for (const rule of rules) {
        if (!rule.eventTypes.has(ev.type)) continue
        const affected = new Set<string>()
        for (const leaf of leaves(rule.when)) {
          if (leaf.kind !== 'event') continue
          if (leaf.types.has(ev.type) && (!leaf.text || leaf.text.test(ev.text ?? ''))) {
            setLeaf(state, leafKey(rule, leaf, point), 1)
            affected.add(point)
            // The same alarm again while raised: raise again. The open alert ignores it; if a person resolved the
            // alert while the detector stayed in alarm, this opens a new one instead of being swallowed.
            if (state.rules.get(ruleKey(rule, point))?.phase === 'raised') {
              effects.push({ type: 'raise', rule, point, at: ts, detail: { event: ev.type, point, ...(ev.text ? { text: ev.text } : {}), repeated: true } })
            }
          } else if (leaf.clearOn.has(ev.type)) {
            // A clearing event with no point (a panel reset) clears every point of the device.
            for (const p of point === '' ? points(state, rule) : [point]) {
              if (state.leaves.has(leafKey(rule, leaf, p))) {
                setLeaf(state, leafKey(rule, leaf, p), null)
                affected.add(p)
              }
            }
          }
        }
        const detail = { event: ev.type, point, ...(ev.text ? { text: ev.text } : {}) }
        for (const p of affected) recompute(state, rule, p, ts, effects, detail)
      }
      duePending(state, rules, ts, effects)
    }
  }
  return effects
}

/**
 * Pending duration rules whose time has come by the device's own clock raise here, in order with the readings: a
 * backlog evaluated late (the engine catching up, a device uploading what it buffered) then raises only if the
 * condition really held `forS`, whatever the wall clock says. The BullMQ timer is the fallback for a device that
 * goes quiet while pending.
 */
function duePending(state: DeviceState, rules: readonly CompiledRule[], ts: number, effects: Effect[]): void {
  state.lastTs = Math.max(state.lastTs, ts)
  for (const [key, st] of state.rules) {
    if (st.phase !== 'pending') continue
    const sep = key.indexOf('|')
    const rule = rules.find((r) => r.id === key.slice(0, sep))
    if (!rule || ts < st.since + rule.forMs) continue
    const point = key.slice(sep + 1)
    state.rules.set(key, { phase: 'raised', since: st.since })
    state.dirty.add(`R|${key}`)
    effects.push({ type: 'cancelTimer', rule, point, since: st.since })
    effects.push({ type: 'raise', rule, point, at: st.since + rule.forMs, detail: { heldS: Math.round(rule.forMs / 1000) } })
  }
}

/** The silence sweep found the device quiet past the rule's limit. */
export function markSilent(state: DeviceState, rule: CompiledRule, lastHeard: number, now: number): Effect[] {
  const effects: Effect[] = []
  const key = leafKey(rule, rule.when, '')
  if (state.leaves.has(key)) return effects
  setLeaf(state, key, 1)
  recompute(state, rule, '', now, effects, { lastHeard: new Date(lastHeard).toISOString(), silentS: Math.round((now - lastHeard) / 1000) })
  return effects
}

/**
 * A duration timer fired: raise if the condition has held since the same moment. `'defer'` when the device is still
 * talking but its readings have not reached the due time yet (the engine is behind, or the device is uploading a
 * backlog): its own readings decide then (see duePending), and the timer is set again as a fallback.
 */
export function timerFired(state: DeviceState, rule: CompiledRule, point: string, since: number, now: number, engineBehind = false): Effect[] | 'defer' {
  const key = ruleKey(rule, point)
  const st = state.rules.get(key)
  if (!st || st.phase !== 'pending' || st.since !== since) return []
  // Readings not yet at the due time while later ones are surely coming: the engine has a backlog to read, or the
  // device is uploading what it buffered (received just now, measured long ago).
  const uploading = state.lastRx > now - 30_000 && state.lastRx - state.lastTs > 10_000
  if (state.lastTs < since + rule.forMs && (engineBehind || uploading)) return 'defer'
  state.rules.set(key, { phase: 'raised', since })
  state.dirty.add(`R|${key}`)
  return [{ type: 'raise', rule, point, at: now, detail: { heldS: Math.round((now - since) / 1000) } }]
}

function recompute(state: DeviceState, rule: CompiledRule, point: string, at: number, effects: Effect[], detail: Record<string, unknown>): void {
  const holds = holdsAt(state, rule, rule.when, point, at)
  const key = ruleKey(rule, point)
  const st = state.rules.get(key)
  if (holds && !st) {
    if (rule.forMs > 0) {
      state.rules.set(key, { phase: 'pending', since: at })
      effects.push({ type: 'startTimer', rule, point, since: at, dueAt: at + rule.forMs })
    } else {
      state.rules.set(key, { phase: 'raised', since: at })
      effects.push({ type: 'raise', rule, point, at, detail })
    }
    state.dirty.add(`R|${key}`)
  } else if (!holds && st) {
    state.rules.delete(key)
    state.dirty.add(`R|${key}`)
    if (st.phase === 'pending') effects.push({ type: 'cancelTimer', rule, point, since: st.since })
    else effects.push({ type: 'clear', rule, point, at, detail })
  }
}

/**
 * Whether a condition holds at a point. Event leaves are per point; threshold, rate and deadman leaves are about the
 * device. At the device itself ('') every leaf counts. At a panel point, a device leaf counts only as a qualifier
 * inside `all` (an event AND a low pressure): in `any` it would hold every point's alert open on its own and raise
 * the same condition again at the device, so there it speaks only for the device.
 */
function holdsAt(state: DeviceState, rule: CompiledRule, c: Condition, point: string, at: number, underAll = false): boolean {
  switch (c.kind) {
    case 'all':
      return c.of.every((x) => holdsAt(state, rule, x, point, at, true))
    case 'any':
      return c.of.some((x) => holdsAt(state, rule, x, point, at, underAll))
    case 'event':
      return state.leaves.has(leafKey(rule, c, point))
    default: {
      if (point !== '' && !underAll) return false
      if (c.kind === 'rate') {
        const until = state.leaves.get(leafKey(rule, c, ''))
        return until !== undefined && until >= at
      }
      return state.leaves.has(leafKey(rule, c, ''))
    }
  }
}

/** Update a threshold or rate leaf with a new value; true if its state changed. */
function updateMetricLeaf(state: DeviceState, rule: CompiledRule, leaf: Condition, ts: number, v: number): boolean {
  const key = leafKey(rule, leaf, '')
  const active = state.leaves.has(key)
  if (leaf.kind === 'threshold') {
    const beyond = leaf.dir === 'below' ? v < leaf.limit : v > leaf.limit
    const back = leaf.dir === 'below' ? v >= leaf.clear : v <= leaf.clear
    if (!active && beyond) return setLeaf(state, key, 1)
    if (active && back) return setLeaf(state, key, null)
    return false
  }
  if (leaf.kind === 'rate') {
    const samples = state.samples.get(leaf.metric) ?? []
    let extreme = v
    for (const s of samples) {
      if (s.ts < ts - leaf.withinMs || s.ts > ts) continue
      extreme = leaf.dir === 'falls' ? Math.max(extreme, s.v) : Math.min(extreme, s.v)
    }
    const change = leaf.dir === 'falls' ? extreme - v : v - extreme
    if (change >= leaf.by - 1e-9) {
      const holdUntil = ts + leaf.holdMs
      const before = state.leaves.get(key)
      state.leaves.set(key, holdUntil)
      state.dirty.add(`L|${key}`)
      return before === undefined || before < ts
    }
    const until = state.leaves.get(key)
    if (until !== undefined && until < ts) return setLeaf(state, key, null)
  }
  return false
}

function hasRateHold(rule: CompiledRule): boolean {
  return leaves(rule.when).some((l) => l.kind === 'rate')
}

function setLeaf(state: DeviceState, key: string, value: number | null): boolean {
  if (value === null) {
    if (!state.leaves.delete(key)) return false
  } else {
    if (state.leaves.get(key) === value) return false
    state.leaves.set(key, value)
  }
  state.dirty.add(`L|${key}`)
  return true
}

function addSample(state: DeviceState, metric: string, ts: number, v: number, keepMs: number): void {
  let list = state.samples.get(metric)
  if (!list) state.samples.set(metric, (list = []))
  // Devices may deliver out of order (aedes dispatches one socket read's packets concurrently): keep time order.
  let i = list.length
  while (i > 0 && list[i - 1]!.ts > ts) i--
  list.splice(i, 0, { ts, v })
  const newest = list[list.length - 1]!.ts
  while (list.length > MAX_SAMPLES || (list.length > 1 && list[0]!.ts < newest - keepMs)) list.shift()
}

/** The points a rule has state at, and always the device itself (''). */
function points(state: DeviceState, rule: CompiledRule): string[] {
  if (!rule.perPoint) return ['']
  const found = new Set<string>([''])
  const prefix = `${rule.id}|`
  for (const k of state.leaves.keys()) {
    // `{rule}|{leaf}|{point}`: leaf ids have no '|', a device's point may.
    if (k.startsWith(prefix)) found.add(k.slice(k.indexOf('|', prefix.length) + 1))
  }
  for (const k of state.rules.keys()) if (k.startsWith(prefix)) found.add(k.slice(prefix.length))
  return [...found]
}

function metricDetail(rule: CompiledRule, values: Record<string, number>): Record<string, unknown> {
  const detail: Record<string, unknown> = {}
  for (const m of rule.metrics) if (m in values) detail[m] = values[m]
  return detail
}

/** Serialise changed keys for a Redis hash: field → value, or null to delete. */
export function dirtyFields(state: DeviceState): Map<string, string | null> {
  const out = new Map<string, string | null>()
  if (state.dirty.size > 0 && state.lastId) out.set('M|last', state.lastId)
  if (state.dirty.size > 0 && state.lastEventId) out.set('M|lastp', state.lastEventId)
  for (const f of state.dirty) {
    const key = f.slice(2)
    if (f.startsWith('L|')) {
      const v = state.leaves.get(key)
      out.set(f, v === undefined ? null : String(v))
    } else {
      const v = state.rules.get(key)
      out.set(f, v === undefined ? null : JSON.stringify(v))
    }
  }
  return out
}

/** Rebuild a device's state from its Redis hash. */
export function restoreState(deviceId: string, hash: Record<string, string>): DeviceState {
  const state = newDeviceState(deviceId)
  for (const [f, v] of Object.entries(hash)) {
    if (f === 'M|last') state.lastId = v
    else if (f === 'M|lastp') state.lastEventId = v
    else if (f.startsWith('L|')) state.leaves.set(f.slice(2), Number(v))
    else if (f.startsWith('R|')) {
      try {
        state.rules.set(f.slice(2), JSON.parse(v) as RulePhase)
      } catch {
        // A damaged field: forget it; the condition is re-established by the next value.
      }
    }
  }
  return state
}
