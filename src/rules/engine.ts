/**
 * The rule engine: a consumer group of the ingest log (so every transport's messages reach it), a per-device state
 * machine (evaluator.ts) kept in memory and written through to Redis on every change, and BullMQ jobs for whatever
 * must happen later (duration timers, the silence sweep, isolation expiry); jobs.ts runs again those BullMQ fails.
 *
 * Order of work per message: evaluate → act (alerts in PostgreSQL, timers in BullMQ) → save the changed state →
 * ack the batch. A failure anywhere drops the in-memory state and re-reads the batch: the saved state still says the
 * edge has not happened, so it happens again, and every action is idempotent (one open alert per key, job ids).
 *
 * One instance runs it (RULE_ENGINE): per-device state lives in this process, and a consumer group hands entries of
 * one device to any member. Partitioning the log by device is the scale-out step (docs/ARCHITECTURE.md).
 *
 * This file assembles the engine and runs its timers; its parts: log-reader.ts (the two readers, retries, dead
 * letters), ack-batch.ts (acks and heard marks), device-queues.ts, device-states.ts, actions.ts (effects → alerts and
 * timers), correlation.ts (fire alarm verification), test-modes.ts, silence-sweep.ts, engine-stats.ts (counters).
 */
import type { Redis } from 'ioredis'
import type { Pool } from '../store/postgres.js'
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { AlertService } from '../alerts/alert-service.js'
import type { RuleSet } from './rule-set.js'
import { timerFired, type DeviceState, type Effect } from './evaluator.js'
import type { Jobs } from './jobs.js'
import type { RuleFollowUps } from './follow-ups.js'
import { newEngineStats, type EngineStats } from './engine-stats.js'
import { TestModes } from './test-modes.js'
import { Correlation } from './correlation.js'
import { DeviceQueues } from './device-queues.js'
import { DeviceStates } from './device-states.js'
import { RuleActions, durationJobId, type DeviceContext } from './actions.js'
import { AckBatch } from './ack-batch.js'
import { LogReader } from './log-reader.js'
import { sweepSilence, type SilenceSweepDeps } from './silence-sweep.js'

export type { EngineStats } from './engine-stats.js'
export { testRuleId } from './test-modes.js'

export interface RuleEngineDeps {
  /** Commands (state, acks, dead letters): the app's shared connection. */
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

export class RuleEngine {
  readonly stats: EngineStats = newEngineStats()
  private readonly testModes: TestModes
  private readonly correlation: Correlation
  private readonly queues = new DeviceQueues()
  private readonly states: DeviceStates
  private readonly actions: RuleActions
  private readonly acks: AckBatch
  private readonly reader: LogReader
  private readonly silence: SilenceSweepDeps
  private redispatchTimer: NodeJS.Timeout | null = null
  private redispatching = false

  constructor(private readonly d: RuleEngineDeps) {
    this.testModes = new TestModes(d.pool, d.testModeRefreshMs ?? 5000)
    this.correlation = new Correlation(d.alerts, d.rules.correlation)
    this.states = new DeviceStates(d.redis, d.prefix, d.cacheSize ?? 100_000)
    this.actions = new RuleActions({ alerts: d.alerts, jobs: d.jobs, correlation: this.correlation, testModes: this.testModes, stats: this.stats })
    this.acks = new AckBatch({ redis: d.redis, consumer: d.consumer, eventConsumer: d.eventConsumer, prefix: d.prefix, log: d.log })
    const { redis, consumer, eventConsumer, pool, rules, profiles, deadLetterStream, log } = d
    this.reader = new LogReader({ redis, consumer, eventConsumer, rules, profiles, deadLetterStream, log, stats: this.stats, queues: this.queues, states: this.states, acks: this.acks, actions: this.actions })
    this.silence = { pool, redis, rules, profiles, queues: this.queues, states: this.states, acks: this.acks, act: (ctx, state, effects) => this.act(ctx, state, effects) }
    d.jobs.handle('timers', 'duration', (data) => this.onDuration(data))
    d.jobs.handle('timers', 'sweep', () => this.sweep())
    // Bookkeeping of the engine's own: a resolved or confirmed alert is no longer one a second source upgrades.
    d.alerts.on('rule-engine', (alert, change) => this.correlation.onAlertChange(alert, change))
  }

  async start(): Promise<void> {
    await this.d.consumer.ensureGroup()
    await this.d.eventConsumer.ensureGroup()
    await this.testModes.refresh()
    await this.correlation.restore()
    this.testModes.startRefreshing()
    this.reader.start()
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
    this.testModes.stop()
    if (this.redispatchTimer) clearInterval(this.redispatchTimer)
    await this.reader.stop()
    // Let every device finish what it has; what it cannot finish stays pending for the next start.
    await this.queues.drain()
    await this.acks.close()
  }

  /** Re-read which devices are in test mode (the API calls this after a change). */
  refreshTestModes(): Promise<void> {
    return this.testModes.refresh()
  }

  /**
   * The periodic sweep: devices silent past their limit, isolations past expiry, units with too many false alarms.
   * Each check re-reads what it needs, so a sweep that runs twice does no harm.
   */
  async sweep(now = Date.now()): Promise<void> {
    this.correlation.prune()
    await sweepSilence(this.silence, now)
    await this.d.followUps.sweep(now)
  }

  /** A duration timer is due: the condition held for its whole duration, unless the device's state says otherwise. */
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
      await this.act(ctx, state, effects)
    })
  }

  /** Act on a device's effects and save its state; on failure what memory holds for the device is dropped. */
  private async act(ctx: DeviceContext, state: DeviceState, effects: Effect[]): Promise<void> {
    try {
      await this.actions.apply(ctx, effects)
      await this.states.save(state)
    } catch (err) {
      this.states.forget(ctx.deviceId)
      throw err
    }
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
}
