/**
 * Notifications leaving Firewatch: webhooks per jurisdiction and alert class (fed from the notification outbox) and
 * the 119 forward of confirmed fire alarms (fed by an alert listener). Built in every thread that changes alerts; the
 * outbox reader and the webhook deliveries run in the rule engine's thread (RULE_ENGINE), the 119 forward's deliveries
 * in a thread of their own on every instance with FORWARD_119_URL (forward-thread.ts). docs/NOTIFICATIONS.md.
 */
import { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { Pool } from '../store/postgres.js'
import { FAILED_SWEEP_MS, type Jobs } from '../rules/jobs.js'
import { LogConsumer } from '../ingest/log-consumer.js'
import { outboxStream } from '../alerts/notifier.js'
import { WebhookRepository } from './webhook-repository.js'
import { WebhookDelivery, type WebhookStats } from './webhook-delivery.js'
import { WebhookDispatcher, WEBHOOK_GROUP } from './webhook-dispatcher.js'
import { Forward119, type ForwardStats } from './forward-119.js'

/** Delivery counters, as /metrics shows them: the webhooks' from the engine's thread, the forward's from its own. */
export interface NotificationStats {
  webhooks: WebhookStats
  forward119: ForwardStats
}

export class Notifications {
  readonly repo: WebhookRepository
  readonly delivery: WebhookDelivery
  readonly forward: Forward119
  private readonly dispatcher: WebhookDispatcher | null = null
  private readonly connection: Redis | null = null
  private readonly log: Logger
  private sweep: NodeJS.Timeout | undefined

  constructor(o: { config: Readonly<Config>; log: Logger; pool: Pool; jobs: Jobs; runWorkers: boolean }) {
    const { config, log, pool, jobs } = o
    this.log = log
    this.repo = new WebhookRepository(pool)
    this.delivery = new WebhookDelivery({ jobs, repo: this.repo, log, settings: config.webhooks })
    this.forward = new Forward119({ pool, jobs, target: config.forward119 })
    if (!o.runWorkers) return
    // The outbox reader's blocking reads hold a connection of their own.
    this.connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true })
    this.connection.on('error', (err) => log.warn({ err }, 'Redis connection error (notification outbox)'))
    const consumer = new LogConsumer(this.connection, { stream: outboxStream(config.redisPrefix), group: WEBHOOK_GROUP, consumer: config.consumerName, batchSize: 100 })
    this.dispatcher = new WebhookDispatcher({ consumer, repo: this.repo, delivery: this.delivery, log })
  }

  async start(): Promise<void> {
    if (!this.connection || !this.dispatcher) return
    await this.connection.connect()
    await this.dispatcher.start()
    // Deliveries failed while their thread died before dead-lettering them (this one's predecessor, another instance).
    const sweepFailed = () => void this.delivery.sweepFailed().catch((err: unknown) => this.log.warn({ err }, 'failed webhook deliveries not read'))
    sweepFailed()
    this.sweep = setInterval(sweepFailed, FAILED_SWEEP_MS)
  }

  async stop(): Promise<void> {
    clearInterval(this.sweep)
    await this.dispatcher?.stop()
    this.connection?.disconnect()
  }
}
