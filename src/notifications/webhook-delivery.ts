/**
 * One webhook delivery as a BullMQ job: POSTed signed, retried with exponential backoff (WEBHOOK_BACKOFF_MS doubling)
 * up to WEBHOOK_ATTEMPTS; the attempt that exhausts them records the delivery as a dead letter, which an administrator
 * of the webhook's jurisdiction lists and can send again (routes/webhooks.ts). The webhook's URL and secret are read
 * at each attempt: a webhook disabled or deleted meanwhile stops receiving, a corrected URL is used at once.
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
  }

  /** `retry`: the n-th time a dead letter is sent again (its job needs an id of its own; the delivery id stays). */
  async enqueue(webhookId: string, deliveryId: string, body: string, retry?: string): Promise<void> {
    const { attempts, backoffMs } = this.d.settings
    const id = retry ? jobId('wh', deliveryId, 'retry', retry) : jobId('wh', deliveryId)
    await this.d.jobs.enqueue('webhooks', 'deliver', id, { webhookId, deliveryId, body }, { attempts, backoff: { type: 'exponential', delay: backoffMs } })
  }

  private async attempt(data: { webhookId: string; deliveryId: string; body: string }, job: Job): Promise<void> {
    const { webhookId, deliveryId, body } = data
    const attempt = job.attemptsMade + 1
    const final = attempt >= (job.opts.attempts ?? 1)
    const target = await this.d.repo.target(webhookId).catch(async (err: Error) => {
      // The last attempt cannot read its webhook (PostgreSQL away): keep the delivery as a dead letter all the same.
      if (final) await this.deadLetter({ webhookId, deliveryId, body, attempts: attempt, lastStatus: null, lastError: `webhook not read: ${err.message}` })
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
      await this.deadLetter({ webhookId, deliveryId, body, attempts: attempt, lastStatus: r.status, lastError: r.error })
      this.d.log.error({ webhookId, deliveryId, attempts: attempt, status: r.status, error: r.error }, 'webhook delivery exhausted its attempts; dead-lettered')
    } else {
      this.d.log.warn({ webhookId, deliveryId, attempt, status: r.status, error: r.error }, 'webhook delivery failed; retrying')
    }
    throw new FirewatchError('FW_ERR_DELIVERY', `webhook delivery: ${r.error}`)
  }

  /**
   * A delivery out of attempts becomes a dead letter through a job of its own, retried without limit like the timers:
   * written straight to PostgreSQL, a database away at that moment lost it (the delivery job, failed, is removed).
   */
  private async deadLetter(d: DeadLetterData): Promise<void> {
    await this.d.jobs.schedule('webhooks', 'dead-letter', jobId('whdl', d.deliveryId, Date.now()), 0, { ...d })
    this.stats.deadLettered++
  }

  private async record(d: DeadLetterData): Promise<void> {
    try {
      await this.d.repo.deadLetter(d)
    } catch (err) {
      // The webhook was deleted meanwhile: its dead letters go with it.
      if ((err as { code?: string }).code === '23503') return
      throw err
    }
  }
}

interface DeadLetterData {
  webhookId: string
  deliveryId: string
  body: string
  attempts: number
  lastStatus: number | null
  lastError: string
}
