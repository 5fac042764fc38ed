/**
 * Delivering the 119 forward (forward-119.ts enqueues it): the handler of the `forward119` jobs, run in the forward's
 * own thread (forward-worker.ts) so that nothing else in the process, a busy rule engine least of all, delays it.
 * GB 50440: a confirmed fire alarm reaches the 119 command center within 3 s of the confirmation.
 *
 * The handler first looks for a recorded delivery, so a job run twice (dispatched twice, or taken up again after its
 * thread died mid-attempt) is forwarded once; the receiver drops a delivery id it already has should even that check
 * be impossible (PostgreSQL away). Retries are fast (100 ms doubling to 2 s, each attempt cut at
 * FORWARD_119_TIMEOUT_MS) and bounded. Every attempt is recorded on the alert: `forwarded_119` or
 * `forward_119_failed`, with attempt, status and timing; the last one's record says `final`.
 *
 * A forward job that fails for good, however it does (its FORWARD_119_ATTEMPTS exhausted; BullMQ's stall limit, its
 * thread having died during it again and again; any other error), is given up the same way, once: recorded on the
 * alert (unless its last attempt was), counted, logged as an error and published on the live channel (change
 * `forward_119_gave_up`, the consoles show it) for the operator to phone 119. The failed job stays in BullMQ's failed
 * set until a `give-up` job (its id the alert's, so one however many threads or instances saw the failure) is
 * enqueued: the worker's `failed` event does that at once, and a sweep of the failed set (at the thread's start, then
 * every few seconds) does it for a failure whose thread died before its event was handled.
 */
import type { Job } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { Pool, PoolOptions } from '../store/postgres.js'
import type { Alert } from '../../schemas/alerts.js'
import type { LivePublisher } from '../alerts/live.js'
import { toAlert } from '../alerts/alert-rows.js'
import { RegistryRepository } from '../store/registry-repository.js'
import { jobId, type Jobs } from '../rules/jobs.js'
import { FirewatchError } from '../errors.js'
import { deliver } from './http-delivery.js'
import type { ForwardData, ForwardStats } from './forward-119.js'

/** What a give-up job carries: the forward's alert and how its job ended. */
interface GiveUpData {
  alertId: string
  alert: Alert | null
  /** BullMQ's failedReason: the last attempt's error, or e.g. "job stalled more than allowable limit". */
  reason: string
  /** Times the forward job was started, stalls included. */
  attemptsStarted: number
}

/** How long a give-up's job id is kept, so that seeing the same failure again gives up nothing more. */
const GIVE_UP_KEPT_MS = 24 * 3600_000

/**
 * The forward thread's PostgreSQL pool: a client for each job its worker runs at once (8), so none waits for another;
 * DATABASE_CONNECT_TIMEOUT_MS to connect, and 5 s for an answer, all its queries being short (an alert, a unit, a record).
 */
export const forwardPoolOptions = (config: Pick<Config, 'databaseConnectTimeoutMs'>): PoolOptions => ({
  max: 8,
  connectTimeoutMs: config.databaseConnectTimeoutMs,
  queryTimeoutMs: 5_000
})
/**
 * GB 50440 gives the forward 3 s in all: the "delivered already?" check before sending waits this long at most for a
 * database that does not answer, then the forward is sent anyway (the receiver drops a delivery id it already has).
 */
export const DELIVERED_CHECK_MS = 1_000

export class Forward119Delivery {
  readonly stats: ForwardStats = { delivered: 0, failed: 0, gaveUp: 0 }
  private readonly registry: RegistryRepository

  constructor(
    private readonly d: { pool: Pool; jobs: Jobs; log: Logger; target: NonNullable<Config['forward119']>; live: Pick<LivePublisher, 'publish'> }
  ) {
    this.registry = new RegistryRepository(d.pool)
    d.jobs.handle('forward119', 'forward', (data, job) => this.forward(data as unknown as ForwardData, job))
    d.jobs.handle('forward119', 'give-up', (data) => this.giveUp(data as unknown as GiveUpData))
    d.jobs.onFailed('forward119', (job) => this.ended(job))
  }

  /** Forwards kept failed that no give-up took out yet: their thread died before its `failed` event was handled. */
  async sweepFailed(): Promise<void> {
    for (const job of await this.d.jobs.failed('forward119')) await this.ended(job as Job)
  }

  private async forward(data: ForwardData, job: Job): Promise<void> {
    const target = this.d.target
    const alertId = String(data.alertId)
    const attempt = job.attemptsMade + 1
    const final = attempt >= (job.opts.attempts ?? 1)
    // Jobs enqueued before the alert travelled with them read it here.
    const alert = data.alert ?? (await this.readAlert(alertId))
    if (!alert) return
    const unit = data.unit !== undefined ? data.unit : await this.registry.getUnit(alert.unitId)
    // Unknown while PostgreSQL is away: sent anyway, the receiver drops a delivery id it already has.
    const checked = within(this.delivered(alertId), DELIVERED_CHECK_MS, 'earlier delivery not checked')
    if (await checked.catch((err: unknown) => (this.d.log.warn({ err, alertId }, '119 forward: earlier delivery not checked; sending'), false))) return
    const deliveryId = `fwd119-${alertId}`
    const body = JSON.stringify({ type: 'fire_confirmed', deliveryId, confirmedAt: alert.confirmedAt, confirmedBy: alert.confirmedBy, alert, unit })
    const r = await deliver({ url: target.url, secret: target.secret, deliveryId, event: 'fire_confirmed', body, timeoutMs: target.timeoutMs })
    const sinceConfirmMs = alert.confirmedAt ? Date.now() - Date.parse(alert.confirmedAt) : null
    if (r.ok) {
      this.stats.delivered++
      this.d.log.info({ alertId, unitId: alert.unitId, attempt, status: r.status, sinceConfirmMs }, 'confirmed fire alarm forwarded to 119')
      // Delivered: a record that cannot be written now must not make it be sent again and again.
      await this.record(alertId, 'forwarded_119', 'forwarded to the 119 command center', { deliveryId, attempt, status: r.status, ms: r.ms, sinceConfirmMs })
      return
    }
    this.stats.failed++
    const comment = final ? `119 forward failed (${r.error}); gave up after ${attempt} attempts: call 119` : `119 forward failed (${r.error}); retrying`
    await this.record(alertId, 'forward_119_failed', comment, { deliveryId, attempt, status: r.status, error: r.error, ms: r.ms, sinceConfirmMs, final })
    this.d.log.warn({ alertId, unitId: alert.unitId, attempt, final, status: r.status, error: r.error, sinceConfirmMs }, final ? '119 forward failed its last attempt' : '119 forward failed; retrying')
    // The last one: the job fails, and its failure is given up (ended, giveUp) like any other.
    throw new FirewatchError('FW_ERR_DELIVERY', `119 forward: ${r.error}`)
  }

  /** A forward job failed for good: its give-up is enqueued once (the job id), then the failed job is taken out. */
  private async ended(job: Job): Promise<void> {
    if (job.name !== 'forward') return
    const data = job.data as ForwardData
    const giveUp: GiveUpData = { alertId: String(data.alertId), alert: data.alert ?? null, reason: job.failedReason ?? 'unknown', attemptsStarted: job.attemptsStarted }
    await this.d.jobs.once('forward119', 'give-up', jobId('fwd119-gave-up', giveUp.alertId), { ...giveUp }, GIVE_UP_KEPT_MS)
    // Gone already: a job enqueued without keepFailed, or another thread took it out first.
    await job.remove().catch(() => undefined)
  }

  private async giveUp(data: GiveUpData): Promise<void> {
    const alertId = String(data.alertId)
    // Delivered after all (the thread died after the receiver's answer each time): nobody needs to phone 119.
    if (await this.delivered(alertId).catch(() => false)) {
      this.d.log.warn({ alertId, reason: data.reason }, '119 forward job failed after its delivery was recorded; not given up')
      return
    }
    // A give-up whose alert cannot be read (a job from before the alert travelled with it) waits for PostgreSQL.
    const alert = data.alert ?? (await this.readAlert(alertId))
    if (!alert) return
    const sinceConfirmMs = alert.confirmedAt ? Date.now() - Date.parse(alert.confirmedAt) : null
    // The last attempt recorded itself as final; a forward that ended otherwise (stalled, an error) is recorded here.
    await this.record(alertId, 'forward_119_failed', `119 forward failed (${data.reason}): call 119`, { deliveryId: `fwd119-${alertId}`, status: null, error: data.reason, attemptsStarted: data.attemptsStarted, sinceConfirmMs, final: true }, { unlessFinal: true })
    this.stats.gaveUp++
    this.d.log.error({ alertId, unitId: alert.unitId, reason: data.reason, attemptsStarted: data.attemptsStarted, sinceConfirmMs }, '119 forward given up: call the 119 command center')
    // The operators' screens must say so at once: nobody reads the server log while a building burns.
    await this.d.live.publish(alert, 'forward_119_gave_up').catch((err: unknown) => this.d.log.warn({ err, alertId }, '119 give-up not published live'))
  }

  private async readAlert(alertId: string): Promise<Alert | null> {
    const { rows } = await this.d.pool.query('SELECT * FROM alerts WHERE id = $1', [alertId])
    return rows[0] ? toAlert(rows[0] as Record<string, unknown>) : null
  }

  private async delivered(alertId: string): Promise<boolean> {
    const { rows } = await this.d.pool.query(`SELECT 1 FROM alert_transitions WHERE alert_id = $1 AND action = 'forwarded_119' LIMIT 1`, [alertId])
    return rows.length > 0
  }

  /**
   * A transition that changes no status and needs no dispatch: the record of one attempt, or of the give-up.
   * `unlessFinal`: not when a final `forward_119_failed` is recorded already (the last attempt's, or this one's before).
   */
  private async record(alertId: string, action: string, comment: string, data: Record<string, unknown>, o: { unlessFinal?: boolean } = {}): Promise<void> {
    const unlessFinal = o.unlessFinal
      ? `AND NOT EXISTS (SELECT 1 FROM alert_transitions t WHERE t.alert_id = alerts.id AND t.action = 'forward_119_failed' AND t.data->>'final' = 'true')`
      : ''
    // Best effort: the attempt's outcome (sent, retried, given up) does not wait for the database.
    await this.d.pool.query(
      `INSERT INTO alert_transitions (alert_id, action, actor, comment, from_status, to_status, data, dispatched_at)
       SELECT id, $2, 'system', $3, status, status, $4, now() FROM alerts WHERE id = $1 ${unlessFinal}`,
      [alertId, action, comment, JSON.stringify(data)]
    ).catch((err: unknown) => this.d.log.error({ err, alertId, action, ...data }, '119 forward attempt not recorded on the alert'))
  }
}

/** `p`, or an error once it has taken `ms` (p goes on, bounded by the pool's own timeouts). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}
