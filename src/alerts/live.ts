/**
 * Live output of alert changes: a capped Redis stream (`{prefix}live`, so a console that reconnects with its last
 * event id gets what it missed), Redis pub/sub (`{prefix}live:alerts`, the stream id included) for the consoles of
 * every instance, and MQTT `v1/alerts/{unitId}` for integrators.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { Alert } from '../../schemas/alerts.js'
import type { AlertChange } from './alert-repository.js'

export interface LiveMessage {
  type: 'alert'
  change: AlertChange
  at: string
  alert: Alert
  /** Id of the entry in the live stream: what a reconnecting client resumes from. */
  eventId?: string
}

/** Publishes to MQTT; null while the broker is not running. */
export type MqttPublish = ((topic: string, payload: string) => Promise<void>) | null

export const alertsTopic = (unitId: string) => `v1/alerts/${unitId}`

export class LivePublisher {
  /** How many changes the stream keeps for clients that reconnect. */
  static readonly KEEP = 100_000
  published = 0

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly mqtt: () => MqttPublish,
    private readonly log: Logger
  ) {}

  get channel(): string {
    return `${this.prefix}live:alerts`
  }
  get stream(): string {
    return `${this.prefix}live`
  }

  async publish(alert: Alert, change: AlertChange): Promise<void> {
    const message: LiveMessage = { type: 'alert', change, at: new Date().toISOString(), alert }
    const body = JSON.stringify(message)
    const eventId = (await this.redis.xadd(this.stream, 'MAXLEN', '~', LivePublisher.KEEP, '*', 'm', body)) as string
    const withId = JSON.stringify({ ...message, eventId })
    await this.redis.publish(this.channel, withId)
    const mqtt = this.mqtt()
    if (mqtt) {
      await mqtt(alertsTopic(alert.unitId), withId).catch((err: Error) => this.log.warn({ err, alertId: alert.id }, 'alert not published on MQTT'))
    }
    this.published++
  }
}
