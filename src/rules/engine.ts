/**
 * The rule engine: a consumer group of the ingest log (so every transport's messages reach it), a per-device state
 * machine (evaluator.ts) kept in memory and written through to Redis on every change, and BullMQ jobs for whatever
 * must happen later (duration timers, the silence sweep, isolation expiry).
 *
 * Order of work per message: evaluate → act (alerts in PostgreSQL, timers in BullMQ) → save the changed state →
 * ack the batch. A failure anywhere drops the in-memory state and re-reads the batch: the saved state still says the
 * edge has not happened, so it happens again, and every action is idempotent (one open alert per key, job ids).
 *
 * One instance runs it (RULE_ENGINE): per-device state lives in this process, and a consumer group hands entries of
 * one device to any member. Partitioning the log by device is the scale-out step (docs/ARCHITECTURE.md).
 */
import type { Redis } from 'ioredis'
import type { Pool } from '../store/postgres.js'
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'
import type { LogEntry } from '../ingest/ingest-log.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { AlertService } from '../alerts/alert-service.js'
import type { RuleSet, CompiledRule } from './rule-set.js'
import { evaluate, markSilent, timerFired, type DeviceState, type Effect } from './evaluator.js'
import type { Jobs } from './jobs.js'
import type { RuleFollowUps } from './follow-ups.js'
import { countFailure, newEngineStats, type EngineStats } from './engine-stats.js'
import { TestModes } from './test-modes.js'
import { DeviceQueues } from './device-queues.js'
import { DeviceStates } from './device-states.js'
import { Correlation } from './correlation.js'
import { RuleActions, durationJobId, type DeviceContext } from './actions.js'

export type { EngineStats } from './engine-stats.js'
export { testRuleId } from './test-modes.js'

export interface RuleEngineDeps {
  /** Commands (state, correlation): the app's shared connection. */
  redis: Redis
  consumer: LogConsumer
  /** Reads the ingest log's events stream (fire alarms and every other event, ahead of any backlog of readings). */
  eventConsumer: LogConsumer
  pool: Pool
  rules: RuleSet
  profiles: ProfileMap
  alerts: AlertService
  jobs: Jobs
  prefix: string
  log: Logger
  /** How often device test modes are re-read from PostgreSQL (the API also tells us at once). @defaultValue 5000 */
  testModeRefreshMs?: number
  /** Device states kept in memory (least recently used go; Redis has them). @defaultValue 100000 */
  cacheSize?: number
  /** The unit-level checks (isolation expiry, false alarms): the sweep runs them too. */
  followUps: RuleFollowUps
  /** How often undispatched alert changes are looked for. @defaultValue 5000 */
  redispatchEveryMs?: number
  /** Where entries that cannot be evaluated go (the stream of the log + ':rules-dead'). */
  deadLetterStream: string
}

/** Where an entry came from: the ingest log, or its events stream (events read ahead of readings). */
type Source = 'log' | 'events'
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

export class RuleEngine {
  private readonly states: DeviceStates
  private readonly queues = new DeviceQueues()
  /** Entries handed to a device queue and not yet done. */
  private readonly inFlight = new Set<string>()
  private resume: (() => void) | null = null
  private readonly toAck: Record<Source, string[]> = { log: [], events: [] }
  private ackTimer: NodeJS.Timeout | null = null
  private readonly heard = new Map<string, number>()
  private readonly correlation: Correlation
  private readonly actions: RuleActions
  private running = false
  private loop: Promise<void> | null = null
  private readonly testModes: TestModes
  private redispatchTimer: NodeJS.Timeout | null = null
  private redispatching = false
  readonly stats: EngineStats = newEngineStats()

  constructor(private readonly d: RuleEngineDeps) {
    this.states = new DeviceStates(d.redis, d.prefix, d.cacheSize ?? 100_000)
    this.testModes = new TestModes(d.pool, d.testModeRefreshMs ?? 5000)
    this.correlation = new Correlation(d.alerts, d.rules.correlation)
    this.actions = new RuleActions({ alerts: d.alerts, jobs: d.jobs, correlation: this.correlation, testModes: this.testModes, stats: this.stats })
    d.jobs.handle('timers', 'duration', (data) => this.onDuration(data))
    d.jobs.handle('timers', 'sweep', () => this.sweep())
    // Bookkeeping of the engine's own: a resolved or confirmed alert is no longer one a second source upgrades.
    d.alerts.on('rule-engine', (alert, change) => this.correlation.onAlertChange(alert, change))
  }

  /** When each device was last heard (a sorted set scored by time: the silence sweep reads only the quiet ones). */
  private get heardKey() {
    return `${this.d.prefix}rules:heard`
  }

  async start(): Promise<void> {
    await this.d.consumer.ensureGroup()
    await this.d.eventConsumer.ensureGroup()
    await this.testModes.refresh()
    await this.correlation.restore()
    this.testModes.startRefreshing()
    this.running = true
    this.loop = Promise.all([this.run(this.d.consumer, 'log'), this.run(this.d.eventConsumer, 'events')]).then(() => undefined)
    // Alert changes whose side effects did not all happen (a crash after the commit, Redis away) are sent again.
    this.redispatchTimer = setInterval(() => {
      if (this.redispatching) return
      this.redispatching = true
      this.d.alerts
        .redispatch()
        .catch((err: unknown) => this.d.log.warn({ err }, 'redispatch of alert changes failed'))
        .finally(() => (this.redispatching = false))
    }, this.d.redispatchEveryMs ?? 5000)
    this.redispatchTimer.unref()
  }

  async stop(): Promise<void> {
    this.running = false
    this.testModes.stop()
    if (this.redispatchTimer) clearInterval(this.redispatchTimer)
    this.resume?.()
    await this.loop
    // Let every device finish what it has; what it cannot finish stays pending for the next start.
    await this.queues.drain()
    if (this.ackTimer) clearTimeout(this.ackTimer)
    await this.flush()
  }

  /** Re-read which devices are in test mode (the API calls this after a change). */
  refreshTestModes(): Promise<void> {
    return this.testModes.refresh()
  }

  /**
   * The reader: it reads the log continuously and hands each entry to its device's queue, up to MAX_IN_FLIGHT entries
   * not yet done. An entry is acked once done (acks go in batches every few milliseconds), so the log is never
   * waited on per batch and a slow device holds up only itself.
   */
  private async run(consumer: LogConsumer, source: Source): Promise<void> {
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
        this.stats.batches++
        for (const read of batch) {
          const e: SourcedEntry = { ...read, source }
          const key = `${source}:${e.id}`
          if (this.inFlight.has(key)) continue // read again while still queued (pending entries after a claim)
          if (!e.message) {
            // Trimmed while pending, or unreadable: the telemetry writer keeps those aside; nothing to evaluate.
            this.acked(e)
            continue
          }
          const m = e.message
          // Its copy in the events stream is evaluated (by the other reader): here it only counts as a sign of life.
          if (source === 'log' && m.type === 'event' && m.p === 1) {
            this.heard.set(m.deviceId, Math.max(this.heard.get(m.deviceId) ?? 0, m.rx))
            this.acked(e)
            continue
          }
          // A will (`offline`) is not a sign of life; the evaluator does not count it either.
          if (!(m.type === 'status' && m.items.every((i) => i.status === 'offline'))) this.heard.set(m.deviceId, Math.max(this.heard.get(m.deviceId) ?? 0, m.rx))
          // The common case, done at once: the device has nothing queued, its state is in memory, and the message
          // changes nothing (a normal reading). No promise, no round trip; only an edge goes to the device's queue.
          let first: Effect[] | null = null
          if (!this.queues.has(m.deviceId) && this.states.has(m.deviceId)) {
            const state = this.states.touch(m.deviceId)
            if (applied(state, e)) {
              this.stats.replaysSkipped++
              this.acked(e)
              continue
            }
            const effects = evaluate(state, this.rulesOf(m), m)
            this.stats.messages++
            if (effects.length === 0 && state.dirty.size === 0) {
              this.acked(e)
              continue
            }
            markApplied(state, e)
            first = effects
          }
          this.inFlight.add(key)
          void this.queues.run(m.deviceId, () => this.handleEntry(e, first)).finally(() => {
            this.inFlight.delete(key)
            if (this.resume && this.inFlight.size < MAX_IN_FLIGHT / 2) {
              this.resume()
              this.resume = null
            }
          })
        }
      } catch (err) {
        countFailure(this.stats, err)
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
          const state = this.states.get(m.deviceId)!
          await this.actions.apply({ deviceId: m.deviceId, unitId: m.unitId, profile: m.kind }, evaluated)
          await this.states.save(state)
        } else await this.handleMessage(entry)
        this.acked(entry)
        return
      } catch (err) {
        countFailure(this.stats, err)
        // What is in memory for this device may be ahead of what was saved: the saved state is the truth.
        this.states.forget(entry.message!.deviceId)
        if (isPoison(err) && attempt >= 3) {
          await this.deadLetter(entry, err)
          this.acked(entry)
          return
        }
        if (!this.running && !isPoison(err)) return // stopping: left pending, read again at the next start
        this.d.log.warn({ err, entryId: entry.id, deviceId: entry.message!.deviceId, retryInMs: backoff }, 'rule evaluation failed; retrying this device')
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }

  private acked(e: SourcedEntry): void {
    this.toAck[e.source].push(e.id)
    this.ackTimer ??= setTimeout(() => void this.flush(), 10)
  }

  /** Ack what is done and record who was heard: one round trip for many entries. */
  private async flush(): Promise<void> {
    this.ackTimer = null
    const ids = this.toAck.log.splice(0)
    const eventIds = this.toAck.events.splice(0)
    const heard = [...this.heard]
    this.heard.clear()
    try {
      const multi = this.d.redis.multi()
      if (ids.length) multi.xack(this.d.consumer.stream, this.d.consumer.group, ...ids)
      if (eventIds.length) multi.xack(this.d.eventConsumer.stream, this.d.eventConsumer.group, ...eventIds)
      if (heard.length) multi.zadd(this.heardKey, ...heard.flatMap(([id, rx]) => [rx, id]))
      await multi.exec()
    } catch (err) {
      // Unacked entries come back at the next start and are skipped as applied; the heard marks come with new messages.
      this.d.log.warn({ err, entries: ids.length }, 'ack failed; the entries will be read again and skipped')
    }
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
        await this.d.redis.hset(this.states.key(m.deviceId), entry.source === 'log' ? 'M|last' : 'M|lastp', entry.id)
        break
      } catch (err) {
        if (!this.running) return
        this.d.log.warn({ err }, 'dead-letter write failed; retrying')
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
    this.states.forget(m.deviceId)
    this.stats.deadLettered++
    this.d.log.error({ err: cause, entryId: entry.id, deviceId: m.deviceId }, 'entry cannot be evaluated; moved to the rule dead-letter stream')
  }

  private async handleMessage(entry: SourcedEntry): Promise<void> {
    const m = entry.message!
    await this.states.load(new Set([m.deviceId]))
    const state = this.states.touch(m.deviceId)
    // Already in the saved state: read again after a restart or a failure.
    if (applied(state, entry)) {
      this.stats.replaysSkipped++
      return
    }
    const effects = evaluate(state, this.rulesOf(m), m)
    this.stats.messages++
    if (effects.length === 0 && state.dirty.size === 0) return
    markApplied(state, entry)
    await this.actions.apply({ deviceId: m.deviceId, unitId: m.unitId, profile: m.kind }, effects)
    await this.states.save(state)
  }

  private rulesOf(m: { kind: string; unitId: string; deviceId: string }): CompiledRule[] {
    return this.d.rules.forDevice(this.d.profiles.get(m.kind)?.kind ?? m.kind, m.unitId, m.deviceId)
  }

  /** Whether the log holds more than a batch or two this engine has not read yet (it is catching up). */
  private async behind(): Promise<boolean> {
    const groups = (await this.d.redis.xinfo('GROUPS', this.d.consumer.stream).catch(() => [])) as unknown[][]
    for (const g of groups) {
      const o: Record<string, unknown> = {}
      for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1]
      if (o.name === this.d.consumer.group) return Number(o.lag ?? 0) > 1000
    }
    return false
  }

  private async onDuration(data: Record<string, unknown>): Promise<void> {
    const ctx: DeviceContext = { deviceId: String(data.deviceId), unitId: String(data.unitId), profile: String(data.profile) }
    await this.queues.run(ctx.deviceId, async () => {
      const rule = this.d.rules.rule(String(data.ruleId), ctx.unitId, ctx.deviceId)
      if (!rule) return
      await this.states.load(new Set([ctx.deviceId]))
      const state = this.states.get(ctx.deviceId)!
      const effects = timerFired(state, rule, String(data.point), Number(data.since), Date.now(), await this.behind())
      if (effects === 'defer') {
        // The device's own readings will raise it when they reach the due time; this is the fallback if they stop.
        await this.d.jobs.schedule('timers', 'duration', `${durationJobId(ctx.deviceId, rule.id, String(data.point), Number(data.since))}.${Date.now()}`, 30_000, data)
        return
      }
      try {
        await this.actions.apply(ctx, effects)
        await this.states.save(state)
      } catch (err) {
        this.states.forget(ctx.deviceId)
        throw err
      }
    })
  }

  /**
   * The periodic sweep: devices silent past their limit, isolations past expiry, units with too many false alarms.
   * Each check re-reads what it needs, so a sweep that runs twice does no harm.
   */
  async sweep(now = Date.now()): Promise<void> {
    this.correlation.prune()
    await this.sweepSilence(now)
    await this.d.followUps.sweep(now)
  }

  /**
   * Devices quiet past their limit. Only candidates are read: devices PostgreSQL has not seen (presence) for the
   * shortest limit any rule or profile sets, of which those the engine has not heard from either (`rules:heard`).
   * Each is checked again, inside the state lock, against the time it was last heard.
   */
  private async sweepSilence(now: number): Promise<void> {
    const minAfterS = this.d.rules.minDeadmanS([...this.d.profiles.values()].map((p) => p.patrolPeriodS))
    if (minAfterS === null) return
    const { rows } = await this.d.pool.query<{ id: string; unit_id: string; profile: string; seen: Date }>(
      'SELECT id, unit_id, profile, coalesce(last_seen_at, created_at) AS seen FROM devices WHERE coalesce(last_seen_at, created_at) < $1',
      [new Date(now - minAfterS * 1000)]
    )
    for (let i = 0; i < rows.length; i += 1000) {
      const page = rows.slice(i, i + 1000)
      const heard = (await this.d.redis.zmscore(this.heardKey, ...page.map((d) => d.id))) as (string | null)[]
      for (const [j, dev] of page.entries()) {
        const profile = this.d.profiles.get(dev.profile)
        if (!profile) continue
        const last = Math.max(dev.seen.getTime(), Number(heard[j] ?? 0))
        for (const rule of this.d.rules.forDevice(profile.kind, dev.unit_id, dev.id)) {
          if (!rule.deadman) continue
          const afterMs = (rule.deadman.afterS ?? profile.patrolPeriodS) * 1000
          if (now - last <= afterMs) continue
          await this.queues.run(dev.id, async () => {
            // Heard while the sweep ran: not silent.
            const fresh = Math.max(Number((await this.d.redis.zscore(this.heardKey, dev.id)) ?? 0), this.heard.get(dev.id) ?? 0)
            if (now - Math.max(last, fresh) <= afterMs) return
            await this.states.load(new Set([dev.id]))
            const state = this.states.get(dev.id)!
            const effects = markSilent(state, rule, Math.max(last, fresh), now)
            if (effects.length === 0) return
            try {
              await this.actions.apply({ deviceId: dev.id, unitId: dev.unit_id, profile: dev.profile }, effects)
              await this.states.save(state)
            } catch (err) {
              this.states.forget(dev.id)
              throw err
            }
          })
        }
      }
    }
  }
}
