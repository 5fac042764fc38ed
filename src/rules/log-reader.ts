/**
 * The engine's two readers: the ingest log and its events stream (fire alarms and every other event, read ahead of
 * any backlog of readings), each a consumer group. Each entry goes to its device's queue, is evaluated against the
 * device's state and acted on there; a failure is retried for that device alone, and an entry that fails the same
 * way every time is dead-lettered instead of stopping its device's alarms behind it.
 *
 * Each stream has its own position in a device's saved state (the last entry applied), so an entry read again
 * (after a restart, a failure, a claim) is recognised and skipped.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'
import type { LogEntry } from '../ingest/ingest-log.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { RuleSet, CompiledRule } from './rule-set.js'
import { evaluate, type DeviceState, type Effect } from './evaluator.js'
import type { AckBatch, Source } from './ack-batch.js'
import type { RuleActions } from './actions.js'
import type { DeviceQueues } from './device-queues.js'
import type { DeviceStates } from './device-states.js'
import { countFailure, type EngineStats } from './engine-stats.js'

type SourcedEntry = LogEntry & { source: Source }

/** Entries read and not yet done, at most: beyond it the reader waits (memory stays bounded under any backlog). */
const MAX_IN_FLIGHT = 20_000

/**
 * Failures that will happen again however often the entry is retried: PostgreSQL refusing the data itself (SQLSTATE
 * classes 22 data exception, 23 integrity, 42 syntax or access), or a programming error on this input. Anything
 * else (a connection lost, a timeout) is an outage, retried for as long as it lasts.
 */
function isPoison(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  if (typeof code === 'string' && /^(22|23|42)[0-9A-Z]{3}$/.test(code)) return true
  return err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError
}

/** Whether the device's saved state already contains this entry (each stream has its own position). */
function applied(state: DeviceState, e: SourcedEntry): boolean {
  const last = e.source === 'log' ? state.lastId : state.lastEventId
  return !!last && !idAfter(e.id, last)
}

function markApplied(state: DeviceState, e: SourcedEntry): void {
  if (e.source === 'log') state.lastId = e.id
  else state.lastEventId = e.id
}

/** Stream ids compare as (ms, seq). */
function idAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number]
  const [bm, bs] = b.split('-').map(Number) as [number, number]
  return am > bm || (am === bm && as > bs)
}

export interface LogReaderDeps {
  /** Commands (dead letters): the app's shared connection. */
  redis: Redis
  consumer: LogConsumer
  eventConsumer: LogConsumer
  rules: RuleSet
  profiles: ProfileMap
  /** Where entries that cannot be evaluated go. */
  deadLetterStream: string
  log: Logger
  stats: EngineStats
  queues: DeviceQueues
  states: DeviceStates
  acks: AckBatch
  actions: RuleActions
}

export class LogReader {
  /** Entries handed to a device queue and not yet done. */
  private readonly inFlight = new Set<string>()
  private resume: (() => void) | null = null
  private running = false
  private loop: Promise<void> | null = null

  constructor(private readonly d: LogReaderDeps) {}

  /** Read both streams until stop. */
  start(): void {
    this.running = true
    this.loop = Promise.all([this.run(this.d.consumer, 'log'), this.run(this.d.eventConsumer, 'events')]).then(() => undefined)
  }

  /** Stop reading; entries already handed to a device queue finish there (DeviceQueues.drain). */
  async stop(): Promise<void> {
    this.running = false
    this.resume?.()
    await this.loop
  }

  /**
   * The reader: it reads the log continuously and hands each entry to its device's queue, up to MAX_IN_FLIGHT entries
   * not yet done. An entry is acked once done (acks go in batches every few milliseconds), so the log is never
   * waited on per batch and a slow device holds up only itself.
   */
  private async run(consumer: LogConsumer, source: Source): Promise<void> {
    const { stats, queues, states, acks } = this.d
    let backoff = 100
    while (this.running) {
      try {
        // The events reader never waits for room: events are few, and they are what must not wait.
        if (source === 'log' && this.inFlight.size >= MAX_IN_FLIGHT) {
          await new Promise<void>((r) => (this.resume = r))
          continue
        }
        const batch = await consumer.next()
        backoff = 100
        if (batch.length === 0) continue
        stats.batches++
        for (const read of batch) {
          const e: SourcedEntry = { ...read, source }
          const key = `${source}:${e.id}`
          if (this.inFlight.has(key)) continue // read again while still queued (pending entries after a claim)
          if (!e.message) {
            // Trimmed while pending, or unreadable: the telemetry writer keeps those aside; nothing to evaluate.
            acks.done(e.source, e.id)
            continue
          }
          const m = e.message
          // Its copy in the events stream is evaluated (by the other reader): here it only counts as a sign of life.
          if (source === 'log' && m.type === 'event' && m.p === 1) {
            acks.heard(m.deviceId, m.rx)
            acks.done(e.source, e.id)
            continue
          }
          // A will (`offline`) is not a sign of life; the evaluator does not count it either.
          if (!(m.type === 'status' && m.items.every((i) => i.status === 'offline'))) acks.heard(m.deviceId, m.rx)
          // The common case, done at once: the device has nothing queued, its state is in memory, and the message
          // changes nothing (a normal reading). No promise, no round trip; only an edge goes to the device's queue.
          let first: Effect[] | null = null
          if (!queues.has(m.deviceId) && states.has(m.deviceId)) {
            const state = states.touch(m.deviceId)
            if (applied(state, e)) {
              stats.replaysSkipped++
              acks.done(e.source, e.id)
              continue
            }
            const effects = evaluate(state, this.rulesOf(m), m)
            stats.messages++
            if (effects.length === 0 && state.dirty.size === 0) {
              acks.done(e.source, e.id)
              continue
            }
            markApplied(state, e)
            first = effects
          }
          this.inFlight.add(key)
          void queues.run(m.deviceId, () => this.handleEntry(e, first)).finally(() => {
            this.inFlight.delete(key)
            if (this.resume && this.inFlight.size < MAX_IN_FLIGHT / 2) {
              this.resume()
              this.resume = null
            }
          })
        }
      } catch (err) {
        countFailure(stats, err)
        this.d.log.warn({ err, retryInMs: backoff }, 'reading the ingest log failed; retrying')
        if (String((err as Error).message).includes('NOGROUP')) await consumer.ensureGroup().catch(() => undefined)
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }

  /** One entry, on its device's queue, until it is done: evaluated, dead-lettered, or found already applied. */
  private async handleEntry(entry: SourcedEntry, evaluated: Effect[] | null = null): Promise<void> {
    let backoff = 100
    for (let attempt = 1; ; attempt++) {
      try {
        if (evaluated && attempt === 1) {
          // Evaluated by the reader already: act and save.
          const m = entry.message!
          const state = this.d.states.get(m.deviceId)!
          await this.d.actions.apply({ deviceId: m.deviceId, unitId: m.unitId, profile: m.kind }, evaluated)
          await this.d.states.save(state)
        } else await this.handleMessage(entry)
        this.d.acks.done(entry.source, entry.id)
        return
      } catch (err) {
        countFailure(this.d.stats, err)
        // What is in memory for this device may be ahead of what was saved: the saved state is the truth.
        this.d.states.forget(entry.message!.deviceId)
        if (isPoison(err) && attempt >= 3) {
          await this.deadLetter(entry, err)
          this.d.acks.done(entry.source, entry.id)
          return
        }
        if (!this.running && !isPoison(err)) return // stopping: left pending, read again at the next start
        this.d.log.warn({ err, entryId: entry.id, deviceId: entry.message!.deviceId, retryInMs: backoff }, 'rule evaluation failed; retrying this device')
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }

  private async handleMessage(entry: SourcedEntry): Promise<void> {
    const { states, stats } = this.d
    const m = entry.message!
    await states.load(new Set([m.deviceId]))
    const state = states.touch(m.deviceId)
    // Already in the saved state: read again after a restart or a failure.
    if (applied(state, entry)) {
      stats.replaysSkipped++
      return
    }
    const effects = evaluate(state, this.rulesOf(m), m)
    stats.messages++
    if (effects.length === 0 && state.dirty.size === 0) return
    markApplied(state, entry)
    await this.d.actions.apply({ deviceId: m.deviceId, unitId: m.unitId, profile: m.kind }, effects)
    await states.save(state)
  }

  /**
   * An entry that fails the same way every time must not stop its device's alarms behind it: it goes to the
   * dead-letter stream with the reason, and its device's state records it as done.
   */
  private async deadLetter(entry: SourcedEntry, cause: unknown): Promise<void> {
    const m = entry.message!
    for (;;) {
      try {
        await this.d.redis.xadd(this.d.deadLetterStream, 'MAXLEN', '~', 100_000, '*', 'id', entry.id, 'm', JSON.stringify(m), 'error', String((cause as Error)?.message ?? cause))
        await this.d.redis.hset(this.d.states.key(m.deviceId), entry.source === 'log' ? 'M|last' : 'M|lastp', entry.id)
        break
      } catch (err) {
        if (!this.running) return
        this.d.log.warn({ err }, 'dead-letter write failed; retrying')
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
    this.d.states.forget(m.deviceId)
    this.d.stats.deadLettered++
    this.d.log.error({ err: cause, entryId: entry.id, deviceId: m.deviceId }, 'entry cannot be evaluated; moved to the rule dead-letter stream')
  }

  private rulesOf(m: { kind: string; unitId: string; deviceId: string }): CompiledRule[] {
    return this.d.rules.forDevice(this.d.profiles.get(m.kind)?.kind ?? m.kind, m.unitId, m.deviceId)
  }
}
