/**
 * Device presence: online while a connection is up (and as the device's `status` says), last seen at its latest
 * message. Changes are kept in memory and written to PostgreSQL in batches, so a busy device costs no query per message.
 */
import type { RegistryRepository } from '../store/registry-repository.js'
import type { Logger } from '../logger.js'

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

  constructor(
    private readonly registry: RegistryRepository,
    private readonly log: Logger,
    private readonly flushMs = 1000
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.flush()
  }

  connected(deviceId: string, connection: object): void {
    this.connections.set(deviceId, connection)
    this.mark(deviceId, true)
  }

  disconnected(deviceId: string, connection: object): void {
    if (this.connections.get(deviceId) !== connection) return
    this.connections.delete(deviceId)
    this.mark(deviceId, false)
  }

  /** A message from this connection; a status from a connection that is no longer the device's changes nothing. */
  seen(deviceId: string, connection: object, online: boolean | null = null): void {
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
