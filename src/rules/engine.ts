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
import type { IngestMessage } from '../ingest/types.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { AlertService } from '../alerts/alert-service.js'
import type { RaiseInput } from '../alerts/alert-repository.js'
import type { Alert } from '../../schemas/alerts.js'
import type { RuleSet, CompiledRule } from './rule-set.js'
import { dirtyFields, evaluate, markSilent, restoreState, timerFired, type DeviceState, type Effect } from './evaluator.js'
import { jobId, type Jobs } from './jobs.js'

export interface RuleEngineDeps {
  /** Commands (state, correlation): the app's shared connection. */
  redis: Redis
  consumer: LogConsumer
  pool: Pool
  rules: RuleSet
  profiles: ProfileMap
  alerts: AlertService
  jobs: Jobs
  prefix: string
  log: Logger
  /** How often device test modes are re-read from PostgreSQL (the API also tells us at once). @defaultValue 5000 */
  testModeRefreshMs?: number
}

export interface EngineStats {
  messages: number
  effects: number
  batches: number
  failures: number
  lastError: string | null
}

interface DeviceContext {
  deviceId: string
  unitId: string
  /** Profile name. */
  profile: string
}

const TWO_SOURCES = 'Fire confirmed by two sources'
const SINGLE_SOURCE = 'Fire alarm - single source, awaiting verification'

export class RuleEngine {
  private readonly cache = new Map<string, DeviceState>()
  private tail: Promise<unknown> = Promise.resolve()
  private running = false
  private loop: Promise<void> | null = null
  private testModes = new Map<string, number>()
  private testModeTimer: NodeJS.Timeout | null = null
  private testModeReads = 0
  readonly stats: EngineStats = { messages: 0, effects: 0, batches: 0, failures: 0, lastError: null }

  constructor(private readonly d: RuleEngineDeps) {
    d.jobs.handle('timers', 'duration', (data) => this.onDuration(data))
    d.jobs.handle('timers', 'sweep', () => this.sweep())
    d.jobs.handle('timers', 'isolation-expiry', (data) => this.exclusive(() => this.checkIsolation(String(data.alertId))))
    d.alerts.on('rule-engine', (alert, change) => this.onAlertChange(alert, change))
  }

  private get heardKey() {
    return `${this.d.prefix}rules:heard`
  }
  private stateKey(deviceId: string) {
    return `${this.d.prefix}rules:dev:${deviceId}`
  }

  async start(): Promise<void> {
    await this.d.consumer.ensureGroup()
    await this.refreshTestModes()
    this.testModeTimer = setInterval(() => void this.refreshTestModes().catch(() => undefined), this.d.testModeRefreshMs ?? 5000)
    this.testModeTimer.unref()
    this.running = true
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.running = false
    if (this.testModeTimer) clearInterval(this.testModeTimer)
    await this.loop
    await this.tail.catch(() => undefined)
  }

  /** Re-read which devices are in test mode (the API calls this after a change). */
  async refreshTestModes(): Promise<void> {
    // Reads may overlap (the timer and the API): only the one started last may replace the map, or a read that
    // began before a change could put the old test modes back after a newer read applied the change.
    const mine = ++this.testModeReads
    const { rows } = await this.d.pool.query<{ id: string; until: Date }>(
      'SELECT id, test_mode_until AS until FROM devices WHERE test_mode_until > now()'
    )
    if (mine === this.testModeReads) this.testModes = new Map(rows.map((r) => [r.id, r.until.getTime()]))
  }

  /** Work on device state one piece at a time: the log consumer, timers and sweeps share it. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => undefined)
    return next
  }

  private async run(): Promise<void> {
    let backoff = 100
    while (this.running) {
      try {
        const batch = await this.d.consumer.next()
        if (batch.length === 0) continue
        await this.exclusive(() => this.processBatch(batch))
        await this.d.consumer.ack(batch.map((e) => e.id))
        this.stats.batches++
        backoff = 100
      } catch (err) {
        this.stats.failures++
        this.stats.lastError = (err as Error).message
        this.d.log.warn({ err, retryInMs: backoff }, 'rule batch failed; state reloaded, batch will be evaluated again')
        // What is in memory may be ahead of what was acted on: forget it, the saved state is the truth.
        this.cache.clear()
        this.d.consumer.retryPending()
        if (String((err as Error).message).includes('NOGROUP')) await this.d.consumer.ensureGroup().catch(() => undefined)
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }

  private async processBatch(batch: LogEntry[]): Promise<void> {
    const messages = batch.flatMap((e) => (e.message ? [e.message] : []))
    await this.load(new Set(messages.map((m) => m.deviceId)))
    const heard = new Map<string, number>()
    for (const m of messages) {
      heard.set(m.deviceId, Math.max(heard.get(m.deviceId) ?? 0, m.rx))
      await this.handleMessage(m)
    }
    if (heard.size > 0) await this.d.redis.hset(this.heardKey, Object.fromEntries([...heard].map(([k, v]) => [k, String(v)])))
  }

  private async handleMessage(m: IngestMessage): Promise<void> {
    const kind = this.d.profiles.get(m.kind)?.kind ?? m.kind
    const rules = this.d.rules.forDevice(kind, m.unitId, m.deviceId)
    const state = this.cache.get(m.deviceId)!
    const effects = evaluate(state, rules, m)
    this.stats.messages++
    if (effects.length === 0 && state.dirty.size === 0) return
    await this.apply({ deviceId: m.deviceId, unitId: m.unitId, profile: m.kind }, effects)
    await this.save(state)
  }

  /** Bring the saved state of these devices into memory (one round trip for all of them). */
  private async load(deviceIds: Set<string>): Promise<void> {
    const missing = [...deviceIds].filter((id) => !this.cache.has(id))
    if (missing.length === 0) return
    const pipe = this.d.redis.pipeline()
    for (const id of missing) pipe.hgetall(this.stateKey(id))
    const replies = (await pipe.exec()) ?? []
    missing.forEach((id, i) => {
      const [err, hash] = replies[i] ?? [new Error('no reply'), null]
      if (err) throw err
      this.cache.set(id, restoreState(id, hash as Record<string, string>))
    })
  }

  private async save(state: DeviceState): Promise<void> {
    const fields = dirtyFields(state)
    if (fields.size === 0) return
    const set: Record<string, string> = {}
    const del: string[] = []
    for (const [f, v] of fields) {
      if (v === null) del.push(f)
      else set[f] = v
    }
    const multi = this.d.redis.multi()
    if (Object.keys(set).length) multi.hset(this.stateKey(state.deviceId), set)
    if (del.length) multi.hdel(this.stateKey(state.deviceId), ...del)
    await multi.exec()
    state.dirty.clear()
  }

  private async apply(ctx: DeviceContext, effects: Effect[]): Promise<void> {
    for (const e of effects) {
      this.stats.effects++
      const key = { unitId: ctx.unitId, deviceId: ctx.deviceId, point: e.point, ruleId: e.rule.id }
      switch (e.type) {
        case 'raise':
          await this.raise(ctx, e.rule, e.point, e.at, e.detail)
          break
        case 'clear':
          await this.d.alerts.clear(key, new Date(Math.min(e.at, Date.now())), e.detail)
          break
        case 'startTimer':
          await this.d.jobs.schedule('timers', 'duration', durationJobId(ctx.deviceId, e.rule.id, e.point, e.since), e.dueAt - Date.now(), {
            ...ctx,
            ruleId: e.rule.id,
            point: e.point,
            since: e.since
          })
          break
        case 'cancelTimer':
          await this.d.jobs.cancel('timers', durationJobId(ctx.deviceId, e.rule.id, e.point, e.since))
          break
      }
    }
  }

  private inTestMode(deviceId: string): boolean {
    const until = this.testModes.get(deviceId)
    return until !== undefined && until > Date.now()
  }

  private async raise(ctx: DeviceContext, rule: CompiledRule, point: string, at: number, detail: Record<string, unknown>): Promise<void> {
    const test = rule.class === 'test' || this.inTestMode(ctx.deviceId)
    // A device clock far off must not put an alert in the future.
    const when = new Date(Math.min(at, Date.now()))
    const input: RaiseInput = {
      unitId: ctx.unitId,
      deviceId: ctx.deviceId,
      point,
      ruleId: rule.id,
      class: test ? 'test' : rule.class,
      troubleType: test ? null : rule.troubleType,
      severity: test ? 'info' : rule.severity,
      title: rule.title,
      detail: { ...detail, ...(rule.titleZh ? { titleZh: rule.titleZh } : {}), ...(test && rule.class !== 'test' ? { testOf: rule.class } : {}) },
      at: when,
      isolationExpiresAt: rule.class === 'isolation' && !test ? new Date(when.getTime() + rule.isolationExpiryS * 1000) : null
    }
    const corr = this.d.rules.correlation
    if (!test && corr) {
      const member = `${rule.id}|${ctx.deviceId}|${point}`
      const zkey = `${this.d.prefix}rules:corr:${ctx.unitId}`
      const now = Date.now()
      const windowMs = corr.windowS * 1000
      if (corr.verify.includes(rule.id)) {
        const recent = (await this.d.redis.zrangebyscore(zkey, now - windowMs, '+inf')) as string[]
        const other = recent.find((m) => {
          const [r, dev] = m.split('|')
          return corr.confirmBy.includes(r!) || (corr.verify.includes(r!) && dev !== ctx.deviceId)
        })
        input.verification = other ? 'two_sources' : 'single_source'
        input.title = other ? TWO_SOURCES : SINGLE_SOURCE
        input.detail = { ...input.detail, ...(other ? { confirmedBy: other } : {}), ...(rule.titleZh ? { titleZh: other ? '火警（双源确认）' : '火警（单一来源，待核实）' } : {}) }
      }
      if (corr.verify.includes(rule.id) || corr.confirmBy.includes(rule.id)) {
        await this.d.redis.multi().zadd(zkey, now, member).zremrangebyscore(zkey, '-inf', now - windowMs).pexpire(zkey, windowMs * 2).exec()
        await this.upgradeUnit(ctx, rule, member, now - windowMs)
      }
    }
    await this.d.alerts.raise(input)
  }

  /** A confirming signal: single-source fire alerts of the unit within the window become "confirmed by two sources". */
  private async upgradeUnit(ctx: DeviceContext, rule: CompiledRule, member: string, since: number): Promise<void> {
    const corr = this.d.rules.correlation!
    const open = await this.d.alerts.list({ unitId: ctx.unitId, status: 'unresolved', class: 'fire', limit: 1000 })
    for (const a of open.items) {
      if (a.verification !== 'single_source' || !corr.verify.includes(a.ruleId)) continue
      if (Date.parse(a.firstSeen) < since) continue
      // A second detector confirms; the same detector again does not.
      if (corr.verify.includes(rule.id) && a.deviceId === ctx.deviceId) continue
      await this.d.alerts.upgrade(a.id, TWO_SOURCES, { confirmedBy: member, titleZh: '火警（双源确认）' })
    }
  }

  private async onDuration(data: Record<string, unknown>): Promise<void> {
    const ctx: DeviceContext = { deviceId: String(data.deviceId), unitId: String(data.unitId), profile: String(data.profile) }
    await this.exclusive(async () => {
      const rule = this.d.rules.rule(String(data.ruleId), ctx.unitId, ctx.deviceId)
      if (!rule) return
      await this.load(new Set([ctx.deviceId]))
      const state = this.cache.get(ctx.deviceId)!
      const effects = timerFired(state, rule, String(data.point), Number(data.since), Date.now())
      try {
        await this.apply(ctx, effects)
        await this.save(state)
      } catch (err) {
        this.cache.delete(ctx.deviceId)
        throw err
      }
    })
  }

  /**
   * The periodic sweep: devices silent past their limit, isolations past expiry, units with too many false alarms.
   * Each check re-reads what it needs, so a sweep that runs twice does no harm.
   */
  async sweep(now = Date.now()): Promise<void> {
    await this.sweepSilence(now)
    await this.sweepIsolations()
    await this.sweepFalseAlarms(now)
  }

  private async sweepSilence(now: number): Promise<void> {
    if (this.d.rules.withLeaf('deadman').length === 0) return
    const heard = (await this.d.redis.hgetall(this.heardKey)) as Record<string, string>
    const { rows } = await this.d.pool.query<{ id: string; unit_id: string; profile: string; created_at: Date; last_seen_at: Date | null }>(
      'SELECT id, unit_id, profile, created_at, last_seen_at FROM devices'
    )
    for (const dev of rows) {
      const profile = this.d.profiles.get(dev.profile)
      if (!profile) continue
      const last = Math.max(Number(heard[dev.id] ?? 0), dev.created_at.getTime(), dev.last_seen_at?.getTime() ?? 0)
      const rules = this.d.rules.forDevice(profile.kind, dev.unit_id, dev.id).filter((r) => r.deadman)
      for (const rule of rules) {
        const afterMs = (rule.deadman!.afterS ?? profile.patrolPeriodS) * 1000
        if (now - last <= afterMs) continue
        await this.exclusive(async () => {
          await this.load(new Set([dev.id]))
          const state = this.cache.get(dev.id)!
          const effects = markSilent(state, rule, last, now)
          if (effects.length === 0) return
          try {
            await this.apply({ deviceId: dev.id, unitId: dev.unit_id, profile: dev.profile }, effects)
            await this.save(state)
          } catch (err) {
            this.cache.delete(dev.id)
            throw err
          }
        })
      }
    }
  }

  private async sweepIsolations(): Promise<void> {
    const rules = this.d.rules.withLeaf('isolationExpired')
    if (rules.length === 0) return
    const expired = await this.d.alerts.repo.expiredIsolations(new Date())
    for (const iso of expired) await this.exclusive(() => this.checkIsolation(iso.id))
    // Clear expiry troubles whose isolation was lifted or extended.
    for (const rule of rules) {
      for (const a of await this.d.alerts.repo.openByRule(rule.id)) await this.exclusive(() => this.checkIsolation(String(a.detail.isolationAlertId ?? ''), a))
    }
  }

  /** Raise or clear the expiry trouble of one isolation alert. */
  private async checkIsolation(isolationId: string, trouble?: Alert): Promise<void> {
    const iso = isolationId ? await this.d.alerts.get(isolationId) : null
    const expired = !!iso && iso.status !== 'resolved' && !!iso.isolationExpiresAt && Date.parse(iso.isolationExpiresAt) <= Date.now()
    for (const rule of this.d.rules.withLeaf('isolationExpired')) {
      const unitId = iso?.unitId ?? trouble?.unitId
      if (!unitId) continue
      const r = this.d.rules.forUnit(rule.id, unitId)
      if (!r) continue
      const key = { unitId, deviceId: iso?.deviceId ?? trouble!.deviceId, point: iso?.point ?? trouble!.point, ruleId: r.id }
      if (expired) {
        await this.d.alerts.raise({
          ...key,
          class: r.class,
          troubleType: r.troubleType,
          severity: r.severity,
          title: r.title,
          detail: { isolationAlertId: iso.id, owner: iso.isolationOwner, expiredAt: iso.isolationExpiresAt, ...(r.titleZh ? { titleZh: r.titleZh } : {}) },
          at: new Date()
        })
      } else {
        await this.d.alerts.clear(key, new Date(), { reason: iso ? (iso.status === 'resolved' ? 'isolation lifted' : 'expiry extended') : 'isolation gone' })
      }
    }
  }

  private async sweepFalseAlarms(now: number): Promise<void> {
    for (const rule of this.d.rules.withLeaf('falseAlarms')) {
      const leaf = rule.when as Extract<CompiledRule['when'], { kind: 'falseAlarms' }>
      const counts = await this.d.alerts.repo.unitsWithFalseAlarms(new Date(now - leaf.withinS * 1000))
      const byUnit = new Map(counts.map((c) => [c.unitId, c.count]))
      for (const [unitId] of byUnit) await this.checkFalseAlarms(rule.id, unitId, now)
      for (const a of await this.d.alerts.repo.openByRule(rule.id)) if (!byUnit.has(a.unitId)) await this.checkFalseAlarms(rule.id, a.unitId, now)
    }
  }

  private async checkFalseAlarms(ruleId: string, unitId: string, now = Date.now()): Promise<void> {
    const rule = this.d.rules.forUnit(ruleId, unitId)
    // A sweep may be asked about a later moment (tests, a catch-up); the alert's own times are never in the future.
    const at = new Date(Math.min(now, Date.now()))
    if (!rule || rule.when.kind !== 'falseAlarms') return
    const count = await this.d.alerts.repo.countFalseAlarms(unitId, new Date(now - rule.when.withinS * 1000))
    const key = { unitId, deviceId: '', point: '', ruleId }
    if (count > rule.when.moreThan) {
      await this.d.alerts.raise({
        ...key,
        class: rule.class,
        troubleType: rule.troubleType,
        severity: rule.severity,
        title: rule.title,
        detail: { falseAlarms: count, withinS: rule.when.withinS, ...(rule.titleZh ? { titleZh: rule.titleZh } : {}) },
        at
      })
    } else {
      await this.d.alerts.clear(key, at, { falseAlarms: count })
    }
  }

  /** Follow-on work of alert changes that belongs to the rules: isolation expiry timers, false-alarm counts. */
  private async onAlertChange(alert: Alert, change: string): Promise<void> {
    if (alert.class === 'isolation' && (change === 'opened' || change === 'isolation_set') && alert.isolationExpiresAt) {
      const at = Date.parse(alert.isolationExpiresAt)
      await this.d.jobs.schedule('timers', 'isolation-expiry', jobId('iso', alert.id, at), at - Date.now(), { alertId: alert.id })
    }
    if (alert.class === 'isolation' && (change === 'cleared' || change === 'resolved' || change === 'isolation_set')) {
      // Lifted or extended: an expiry trouble raised for it clears.
      const trouble = this.d.rules.withLeaf('isolationExpired')[0]
      if (trouble) {
        const open = await this.d.alerts.repo.getOpen({ unitId: alert.unitId, deviceId: alert.deviceId, point: alert.point, ruleId: trouble.id })
        if (open) await this.checkIsolation(alert.id, open)
      }
    }
    if (change === 'resolved' && alert.disposition === 'false_alarm') {
      for (const rule of this.d.rules.withLeaf('falseAlarms')) await this.checkFalseAlarms(rule.id, alert.unitId)
    }
  }
}

const durationJobId = (deviceId: string, ruleId: string, point: string, since: number) => jobId('dur', deviceId, ruleId, point, since)
