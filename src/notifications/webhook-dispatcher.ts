/**
 * Reads the notification outbox (`{prefix}notifications`, written by alerts/notifier.ts) as the consumer group
 * `webhooks` and turns each digest into one delivery job per matching webhook. An outbox entry is acked only once its
 * jobs are in BullMQ, so a process dying in between reads it again (its pending entries come first on restart) and
 * the job ids (entry, webhook) keep a job from being added twice.
 */
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'
import type { LogEntry } from '../ingest/ingest-log.js'
import type { Notification } from '../alerts/notifier.js'
import type { WebhookRepository } from './webhook-repository.js'
import type { WebhookDelivery } from './webhook-delivery.js'

/** Consumer group of webhook fan-out on the notification outbox. */
export const WEBHOOK_GROUP = 'webhooks'

export class WebhookDispatcher {
  private running = false
  private loop: Promise<void> | null = null
  /** Digests read from the outbox, and delivery jobs added. */
  readonly stats = { digests: 0, enqueued: 0 }

  constructor(
    private readonly d: { consumer: LogConsumer; repo: WebhookRepository; delivery: WebhookDelivery; log: Logger }
  ) {}

  async start(): Promise<void> {
    await this.d.consumer.ensureGroup()
    this.running = true
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.running = false
    await this.loop
  }

  private async run(): Promise<void> {
    let backoff = 100
    while (this.running) {
      try {
        const batch = await this.d.consumer.next()
        for (const entry of batch) await this.fanOut(entry)
        await this.d.consumer.ack(batch.map((e) => e.id))
        backoff = 100
      } catch (err) {
        if (!this.running) break
        this.d.log.warn({ err, retryInMs: backoff }, 'notification outbox not read; will retry')
        this.d.consumer.retryPending()
        // Redis lost the stream or the group (a restore without AOF): recreate it rather than fail forever.
        if (String((err as Error).message).includes('NOGROUP')) await this.d.consumer.ensureGroup().catch(() => undefined)
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 5000)
      }
    }
  }

  private async fanOut(entry: LogEntry): Promise<void> {
    // The outbox shares the ingest log's entry shape (one JSON field); what it holds is a digest.
    const n = entry.message as unknown as Notification | null
    if (!n || !Array.isArray(n.items)) {
      this.d.log.warn({ entryId: entry.id }, 'notification outbox entry unreadable or trimmed before it was read; skipped')
      return
    }
    this.stats.digests++
    const classes = [...new Set(n.items.map((i) => i.class))]
    for (const w of await this.d.repo.matching(n.unitId, classes, n.sentAt)) {
      const items = n.items.filter((i) => w.classes.includes(i.class))
      const byClass: Record<string, number> = {}
      for (const i of items) byClass[i.class] = (byClass[i.class] ?? 0) + 1
      const deliveryId = `${entry.id}.${w.id}`
      const body = JSON.stringify({ type: 'notification', deliveryId, webhookId: w.id, unitId: n.unitId, items, byClass, sentAt: n.sentAt })
      await this.d.delivery.enqueue(w.id, deliveryId, body)
      this.stats.enqueued++
    }
  }
}
