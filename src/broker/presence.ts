/**
 * Device presence: online while a connection is up (and as the device's `status` says), last seen at its latest
 * message. Changes are kept in memory and written to PostgreSQL in batches, so a busy device costs no query per message.
 * A device going online or offline is also published at once on the live channel ({@link DeviceStateFeed}).
 */
import { publishLive } from '../alerts/live.js'
import type { Redis } from 'ioredis'
import type { RegistryRepository } from '../store/registry-repository.js'
import type { Logger } from '../logger.js'

/** A device went online or offline: a message of the live channel, beside the alert changes (src/alerts/live.ts). */
export interface DeviceStateMessage {
  type: 'device'
  deviceId: string
  unitId: string
  online: boolean
  at: string
  /** Id of the entry in the live stream (added on the way out). */
  eventId?: string
}

/** Publishes device state changes on the live stream and channel (the names LivePublisher uses). */
export class DeviceStateFeed {
  published = 0
  /** The last publish, so `idle()` can wait for it (commands on one connection run in the order sent). */
  private last: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly redis: Redis,
    private readonly live: { stream: string; channel: string; keep: number },
    private readonly log: Logger
  ) {}

  /** Not awaited by presence: a device's connection never waits on Redis. Publishes keep the order they were made in. */
  publish(message: DeviceStateMessage): void {
    this.last = publishLive(this.redis, this.live, message).then(
      () => this.published++,
      (err: Error) => this.log.warn({ err, deviceId: message.deviceId, online: message.online }, 'device state not published live')
    )
  }

  idle(): Promise<unknown> {
    return this.last
  }
}

interface Pending {
  lastSeen: Date
  online: boolean | null
}

export class Presence {
  private pending = new Map<string, Pending>()
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> | null = null
  /** The connection currently serving each device; a stale connection closing must not mark a live device offline. */
  private connections = new Map<string, object>()
  /** What the live channel was last told of each device (online or not), so only changes are published. */
  private published = new Map<string, boolean>()
  /** Each device's unit, as the broker or poller said when it connected (devices do not change unit). */
  private units = new Map<string, string>()
  /** Devices whose unit is being looked up; their changes wait behind the lookup, in order. */
  private lookups = new Map<string, Promise<void>>()

  constructor(
    private readonly registry: RegistryRepository,
    private readonly log: Logger,
    private readonly flushMs = 1000,
    private readonly feed: DeviceStateFeed | null = null
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.flush()
    await Promise.all(this.lookups.values())
    await this.feed?.idle()
  }

  /** `unitId`: the device's unit, for the live channel's scope (looked up in the registry when not given). */
  connected(deviceId: string, connection: object, unitId?: string): void {
    if (unitId) this.units.set(deviceId, unitId)
    this.connections.set(deviceId, connection)
    this.mark(deviceId, true)
  }

  disconnected(deviceId: string, connection: object): void {
    if (this.connections.get(deviceId) !== connection) return
    this.connections.delete(deviceId)
    this.mark(deviceId, false)
  }

  /** A message from this connection; a status from a connection that is no longer the device's changes nothing. */
  seen(deviceId: string, connection: object, online: boolean | null = null, unitId?: string): void {
    if (unitId) this.units.set(deviceId, unitId)
    const current = this.connections.get(deviceId)
    this.mark(deviceId, current === undefined || current === connection ? online : null)
  }

  private mark(deviceId: string, online: boolean | null): void {
    const p = this.pending.get(deviceId)
    if (p) {
      p.lastSeen = new Date()
      if (online !== null) p.online = online
    } else {
      this.pending.set(deviceId, { lastSeen: new Date(), online })
    }
    if (online !== null) this.changed(deviceId, online)
  }

  /**
   * Publish a change of online state (not a repeat: a will after the disconnect, a second `online` status) on the
   * live channel, at once rather than at the next flush: an operator's screen should not wait for PostgreSQL.
   */
  private changed(deviceId: string, online: boolean): void {
    const feed = this.feed
    if (!feed || this.published.get(deviceId) === online) return
    this.published.set(deviceId, online)
    const at = new Date().toISOString()
    const unitId = this.units.get(deviceId)
    const pending = this.lookups.get(deviceId)
    if (unitId && !pending) return feed.publish({ type: 'device', deviceId, unitId, online, at })
    // Unit not known (a caller that did not say): look it up once; later changes of the device queue behind it.
    const next = (pending ?? Promise.resolve())
      .then(async () => {
        const unit = this.units.get(deviceId) ?? (await this.registry.getDevice(deviceId))?.unitId
        if (!unit) return this.log.debug({ deviceId }, 'device state not published live: unknown device')
        this.units.set(deviceId, unit)
        feed.publish({ type: 'device', deviceId, unitId: unit, online, at })
      })
      .catch((err: unknown) => this.log.warn({ err, deviceId, online }, 'device state not published live: unit lookup failed'))
      .finally(() => {
        if (this.lookups.get(deviceId) === next) this.lookups.delete(deviceId)
      })
    this.lookups.set(deviceId, next)
  }

  /** One flush at a time, so presence changes reach PostgreSQL in the order they happened. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing
    this.flushing = this.write().finally(() => (this.flushing = null))
    await this.flushing
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return
    const batch = this.pending
    this.pending = new Map()
    try {
      await this.registry.recordPresence([...batch].map(([id, p]) => ({ id, ...p })))
    } catch (err) {
      this.log.warn({ err, devices: batch.size }, 'presence not recorded; will retry')
      // Put the batch back under whatever came in since: newer news wins, an older presence change is kept.
      for (const [id, p] of batch) {
        const newer = this.pending.get(id)
        this.pending.set(id, newer ? { lastSeen: newer.lastSeen, online: newer.online ?? p.online } : p)
      }
    }
  }
}
