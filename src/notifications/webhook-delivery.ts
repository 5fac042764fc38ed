/**
 * One webhook delivery as a BullMQ job: POSTed signed, retried with exponential backoff (WEBHOOK_BACKOFF_MS doubling)
 * up to WEBHOOK_ATTEMPTS; the attempt that exhausts them records the delivery as a dead letter, which an administrator
 * of the webhook's jurisdiction lists and can send again (routes/webhooks.ts). The webhook's URL and secret are read
 * at each attempt: a webhook disabled or deleted meanwhile stops receiving, a corrected URL is used at once.
 *
 * A delivery job that fails for good any other way (BullMQ's stall limit, its thread having died during it again and
 * again; an error that bypassed the last attempt's dead-lettering) is dead-lettered too, with BullMQ's reason, once:
 * the failed job stays in BullMQ's failed set until a `dead-letter` job keyed by the delivery job's id is enqueued for
 * it, by the worker's `failed` event at once or by the sweep of the failed set (sweepFailed: at the engine thread's
 * start, then every few seconds) if the thread that failed it died first. The last attempt's own dead letter has the
 * same key, so the failure seen again adds nothing.
 */
import type { Job } from 'bullmq'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import { jobId, type Jobs } from '../rules/jobs.js'
import type { WebhookRepository } from './webhook-repository.js'
import { FirewatchError } from '../errors.js'
import { deliver } from './http-delivery.js'

export interface WebhookStats {
  delivered: number
  /** Attempts that failed (retried until the last). */
  failed: number
  deadLettered: number
}

export class WebhookDelivery {
  readonly stats: WebhookStats = { delivered: 0, failed: 0, deadLettered: 0 }

  constructor(
    private readonly d: { jobs: Jobs; repo: WebhookRepository; log: Logger; settings: Config['webhooks'] }
  ) {
    d.jobs.handle('webhooks', 'deliver', (data, job) => this.attempt(data as { webhookId: string; deliveryId: string; body: string }, job))
    d.jobs.handle('webhooks', 'dead-letter', (data) => this.record(data as unknown as DeadLetterData))
    d.jobs.onFailed('webhooks', (job) => this.ended(job))
  }

  /** Deliveries kept failed that no dead letter took out yet: their thread died before its `failed` event was handled. */
  async sweepFailed(): Promise<void> {
    for (const job of await this.d.jobs.failed('webhooks')) await this.ended(job)
  }

  /** `retry`: the n-th time a dead letter is sent again (its job needs an id of its own; the delivery id stays). */
  async enqueue(webhookId: string, deliveryId: string, body: string, retry?: string): Promise<void> {
    const { attempts, backoffMs } = this.d.settings
    const id = retry ? jobId('wh', deliveryId, 'retry', retry) : jobId('wh', deliveryId)
    // Kept when it fails, so that its dead letter survives the thread dying before it wrote it (ended, sweepFailed).
    await this.d.jobs.enqueue('webhooks', 'deliver', id, { webhookId, deliveryId, body }, { attempts, backoff: { type: 'exponential', delay: backoffMs }, keepFailed: true })
  }

  private async attempt(data: { webhookId: string; deliveryId: string; body: string }, job: Job): Promise<void> {
    const { webhookId, deliveryId, body } = data
    const attempt = job.attemptsMade + 1
    const final = attempt >= (job.opts.attempts ?? 1)
    const target = await this.d.repo.target(webhookId).catch(async (err: Error) => {
      // The last attempt cannot read its webhook (PostgreSQL away): keep the delivery as a dead letter all the same.
      if (final) await this.deadLetter(job, { webhookId, deliveryId, body, attempts: attempt, lastStatus: null, lastError: `webhook not read: ${err.message}` })
      throw err
    })
    if (!target || !target.enabled) {
      this.d.log.info({ webhookId, deliveryId }, 'webhook deleted or disabled; delivery dropped')
      return
    }
    const r = await deliver({ url: target.url, secret: target.secret, deliveryId, event: 'notification', body, timeoutMs: this.d.settings.timeoutMs })
    if (r.ok) {
      this.stats.delivered++
      this.d.log.debug({ webhookId, deliveryId, attempt, status: r.status, ms: r.ms }, 'webhook delivered')
      return
    }
    this.stats.failed++
    if (final) {
      await this.deadLetter(job, { webhookId, deliveryId, body, attempts: attempt, lastStatus: r.status, lastError: r.error })
      this.d.log.error({ webhookId, deliveryId, attempts: attempt, status: r.status, error: r.error }, 'webhook delivery exhausted its attempts; dead-lettered')
    } else {
      this.d.log.warn({ webhookId, deliveryId, attempt, status: r.status, error: r.error }, 'webhook delivery failed; retrying')
    }
    throw new FirewatchError('FW_ERR_DELIVERY', `${FAILED_ATTEMPT}${r.error}`)
  }

  /**
   * A delivery out of attempts becomes a dead letter through a job of its own, retried without limit like the timers:
   * written straight to PostgreSQL, a database away at that moment lost it. Its id is the delivery job's, kept a day
   * after it ran, so that however many observers (the last attempt, the failed event, sweeps) add it, it is added once;
   * a dead letter sent again is a delivery job of its own and so gets a dead letter of its own.
   */
  private async deadLetter(job: Job, d: DeadLetterData): Promise<void> {
    await this.d.jobs.once('webhooks', 'dead-letter', jobId('whdl', job.id ?? d.deliveryId), { ...d }, DEAD_LETTER_KEPT_MS)
  }

  /** A delivery job failed for good, however: its dead letter is enqueued (once, its id), then the failed job taken out. */
  private async ended(job: Job): Promise<void> {
    if (job.name !== 'deliver') return
    const { webhookId, deliveryId, body } = job.data as { webhookId: string; deliveryId: string; body: string }
    const lastError = job.failedReason || 'unknown'
    await this.deadLetter(job, { webhookId, deliveryId, body, attempts: job.attemptsMade, lastStatus: null, lastError })
    // The last attempt failing logged itself; a delivery failed otherwise (stalled, an error) is logged here.
    if (!lastError.startsWith(FAILED_ATTEMPT)) {
      this.d.log.error({ webhookId, deliveryId, attemptsStarted: job.attemptsStarted, reason: lastError }, 'webhook delivery failed other than by its attempts; dead-lettered')
    }
    // Gone already: a job enqueued without keepFailed, or another observer took it out first.
    await job.remove().catch(() => undefined)
  }

  private async record(d: DeadLetterData): Promise<void> {
    try {
      await this.d.repo.deadLetter(d)
      this.stats.deadLettered++
    } catch (err) {
      // The webhook was deleted meanwhile: its dead letters go with it.
      if ((err as { code?: string }).code === '23503') return
      throw err
    }
  }
}

/** How an attempt that failed (the receiver's answer, a timeout) says so: BullMQ keeps it as the job's failedReason. */
const FAILED_ATTEMPT = 'webhook delivery: '
/** How long a dead letter's job id is kept, so that seeing the same failure again records nothing more. */
const DEAD_LETTER_KEPT_MS = 24 * 3600_000

interface DeadLetterData {
  webhookId: string
  deliveryId: string
  body: string
  attempts: number
  lastStatus: number | null
  lastError: string
}
