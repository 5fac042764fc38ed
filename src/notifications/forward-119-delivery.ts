/**
 * Delivering the 119 forward (forward-119.ts enqueues it): the handler of the `forward119` jobs, run in the forward's
 * own thread (forward-worker.ts) so that nothing else in the process, a busy rule engine least of all, delays it.
 * GB 50440: a confirmed fire alarm reaches the 119 command center within 3 s of the confirmation.
 *
 * The handler first looks for a recorded delivery, so a job run twice (dispatched twice, or taken up again after its
 * thread died mid-attempt) is forwarded once; the receiver drops a delivery id it already has should even that check
 * be impossible (PostgreSQL away). Retries are fast (100 ms doubling to 2 s, each attempt cut at
 * FORWARD_119_TIMEOUT_MS) and bounded: after FORWARD_119_ATTEMPTS (30: one to one and a half minutes) the last failure
 * is recorded as final, logged as an error and published on the live channel (change `forward_119_gave_up`, the
 * consoles show it), for the operator to phone 119. Every attempt is recorded on the alert: `forwarded_119` or
 * `forward_119_failed`, with attempt, status and timing.
 */
import type { Job } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { Pool } from '../store/postgres.js'
import type { Alert } from '../../schemas/alerts.js'
import type { LivePublisher } from '../alerts/live.js'
import { toAlert } from '../alerts/alert-repository.js'
import { RegistryRepository } from '../store/registry-repository.js'
import type { Jobs } from '../rules/jobs.js'
import { FirewatchError } from '../errors.js'
import { deliver } from './http-delivery.js'
import type { ForwardData, ForwardStats } from './forward-119.js'

export class Forward119Delivery {
  readonly stats: ForwardStats = { delivered: 0, failed: 0, gaveUp: 0 }
  private readonly registry: RegistryRepository

  constructor(
    private readonly d: { pool: Pool; jobs: Jobs; log: Logger; target: NonNullable<Config['forward119']>; live: Pick<LivePublisher, 'publish'> }
  ) {
    this.registry = new RegistryRepository(d.pool)
    d.jobs.handle('forward119', 'forward', (data, job) => this.forward(data as unknown as ForwardData, job))
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
    if (await this.delivered(alertId).catch((err: unknown) => (this.d.log.warn({ err, alertId }, '119 forward: earlier delivery not checked; sending'), false))) return
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
    if (final) this.stats.gaveUp++
    const comment = final ? `119 forward failed (${r.error}); gave up after ${attempt} attempts: call 119` : `119 forward failed (${r.error}); retrying`
    await this.record(alertId, 'forward_119_failed', comment, { deliveryId, attempt, status: r.status, error: r.error, ms: r.ms, sinceConfirmMs, final })
    const fields = { alertId, unitId: alert.unitId, attempt, status: r.status, error: r.error, sinceConfirmMs }
    if (final) {
      this.d.log.error(fields, '119 forward given up: call the 119 command center')
      // The operators' screens must say so at once: nobody reads the server log while a building burns.
      await this.d.live.publish(alert, 'forward_119_gave_up').catch((err: unknown) => this.d.log.warn({ err, alertId }, '119 give-up not published live'))
    } else this.d.log.warn(fields, '119 forward failed; retrying')
    throw new FirewatchError('FW_ERR_DELIVERY', `119 forward: ${r.error}`)
  }

  private async readAlert(alertId: string): Promise<Alert | null> {
    const { rows } = await this.d.pool.query('SELECT * FROM alerts WHERE id = $1', [alertId])
    return rows[0] ? toAlert(rows[0] as Record<string, unknown>) : null
  }

  private async delivered(alertId: string): Promise<boolean> {
    const { rows } = await this.d.pool.query(`SELECT 1 FROM alert_transitions WHERE alert_id = $1 AND action = 'forwarded_119' LIMIT 1`, [alertId])
    return rows.length > 0
  }

  /** A transition that changes no status and needs no dispatch: the record of one attempt. */
  private async record(alertId: string, action: string, comment: string, data: Record<string, unknown>): Promise<void> {
    // Best effort: the attempt's outcome (sent, retried, given up) does not wait for the database.
    await this.d.pool.query(
      `INSERT INTO alert_transitions (alert_id, action, actor, comment, from_status, to_status, data, dispatched_at)
       SELECT id, $2, 'system', $3, status, status, $4, now() FROM alerts WHERE id = $1`,
      [alertId, action, comment, JSON.stringify(data)]
    ).catch((err: unknown) => this.d.log.error({ err, alertId, action, ...data }, '119 forward attempt not recorded on the alert'))
  }
}
