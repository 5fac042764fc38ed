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

/**
 * One live change, in one step: the stream entry, then the same message with its entry id on the channel. Alert
 * changes and device state changes (presence) both go through here, so they share one order and one resume.
 * @returns the message as published, with its `eventId`.
 */
export function publishLive(redis: Redis, live: { stream: string; channel: string; keep: number }, message: object): Promise<string> {
  return redis.eval(PUBLISH, 1, live.stream, JSON.stringify(message), live.channel, live.keep) as Promise<string>
}

// KEYS: the live stream; ARGV: the message (a JSON object), the channel, how many entries the stream keeps.
const PUBLISH = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
local withId = string.sub(ARGV[1], 1, -2) .. ',"eventId":"' .. id .. '"}'
redis.call('PUBLISH', ARGV[2], withId)
return withId
`

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
    // One round trip: the stream entry, then the same message with its entry id on the channel.
    const withId = await publishLive(this.redis, { stream: this.stream, channel: this.channel, keep: LivePublisher.KEEP }, message)
    const mqtt = this.mqtt()
    if (mqtt) {
      // Not awaited: aedes calls back only once every subscriber's socket drained, and one slow integrator must not
      // hold up the alert path (the rule engine, an operator's acknowledgement) for its drain timeout.
      mqtt(alertsTopic(alert.unitId), withId).catch((err: Error) => this.log.warn({ err, alertId: alert.id }, 'alert not published on MQTT'))
    }
    this.published++
  }
}
