/** One client of the live channel: its scope, its position in the stream, catching up and then live. */
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { type Principal } from '../../auth/principal.js'
import { LIVE_CLOSE } from './protocol.js'
import { cmp, idText, type Id } from './stream-id.js'
import type { LiveHub } from './live-hub.js'

/** One change, parsed once for every socket: the text to send as is, and the jurisdictions its unit sits in. */
export interface Item {
  id: Id
  text: string
  /** The unit's jurisdiction path; null: no such unit (only callers bound to no jurisdiction see it); undefined: the lookup failed. */
  path: string[] | null | undefined
}

/** The unit a message is about: `alert.unitId` for alert changes, `unitId` for device changes. */
export function unitOf(message: unknown): string | null {
  const m = message as { type?: unknown; unitId?: unknown; alert?: { unitId?: unknown } }
  const unit = m.type === 'alert' ? m.alert?.unitId : m.unitId
  return typeof unit === 'string' ? unit : null
}

export class LiveSocket {
  principal!: Principal
  /** Everything up to here was sent or is outside the caller's scope. */
  cursor: Id = [0n, 0n]
  /** The position to report in `ready`: the last event id sent, else where the socket started. */
  position = '0-0'
  /** Live messages held back while the stream is read; null once caught up. */
  queue: Item[] | null = []
  ready = false
  closed = false
  alive = true
  private catching = false
  private again = false
  /** While a page of the stream is sent: the write of its last message, to wait for before reading the next page. */
  private tracking = false
  private flushed: Promise<void> | null = null
  /** Resolves when the connection closed. */
  readonly gone: Promise<void>

  constructor(
    readonly socket: WebSocket,
    readonly token: string,
    private readonly hub: LiveHub,
    readonly log: FastifyBaseLogger
  ) {
    this.gone = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  /** A message of the channel, in order. */
  offer(item: Item): void {
    if (this.closed) return
    if (this.queue) {
      if (this.queue.length >= this.hub.limits.maxQueued) return this.close(LIVE_CLOSE.tooSlow, 'too slow: too many messages waiting')
      this.queue.push(item)
      return
    }
    this.deliver(item)
  }

  private deliver(item: Item): void {
    if (this.closed || cmp(item.id, this.cursor) <= 0) return
    this.cursor = item.id
    const scope = this.principal.scope
    if (scope !== null) {
      if (item.path === undefined) return this.close(LIVE_CLOSE.internal, 'scope lookup failed; reconnect with lastEventId')
      if (item.path === null || !item.path.includes(scope)) return
    }
    this.position = idText(item.id)
    this.send(item.text)
  }

  send(text: string): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return
    // A page of the backlog is paced by its writes (catchUp waits for them); a live message is not waited for.
    if (this.tracking) return void (this.flushed = new Promise((resolve) => this.socket.send(text, () => resolve())))
    this.socket.send(text)
    if (this.socket.bufferedAmount > this.hub.limits.maxBufferedBytes) this.close(LIVE_CLOSE.tooSlow, 'too slow: send buffer full')
  }

  /**
   * Read the stream after the cursor, page by page, then send what the channel brought meanwhile and go live. Run
   * again while it runs (the shared subscriber came back), it reads on before going live.
   */
  async catchUp(): Promise<void> {
    if (this.catching) {
      this.again = true
      return
    }
    this.catching = true
    this.queue ??= []
    try {
      do {
        this.again = false
        for (;;) {
          const page = await this.hub.range(this.cursor)
          if (this.closed) return
          this.tracking = true
          for (const item of page) this.deliver(item)
          this.tracking = false
          // Back-pressure: the next page (or live messages) once this one is on the wire, or the connection is gone.
          if (this.flushed) await Promise.race([this.flushed, this.gone])
          this.flushed = null
          if (this.closed) return
          if (page.length < this.hub.limits.page) break
        }
      } while (this.again)
      // Cut off again meanwhile: keep buffering; the hub runs this again when the subscriber is back.
      if (!this.hub.attached || this.closed) return
      if (!this.ready) {
        this.ready = true
        this.send(JSON.stringify({ type: 'ready', eventId: this.position }))
      }
      const queued = this.queue ?? []
      this.queue = null
      for (const item of queued) this.deliver(item)
    } catch (err) {
      this.log.warn({ err }, 'live channel: reading the stream failed')
      this.close(LIVE_CLOSE.internal, 'live history unavailable; reconnect with lastEventId')
    } finally {
      this.catching = false
      this.tracking = false
      this.flushed = null
    }
  }

  close(code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.queue = null
    this.hub.forget(this)
    this.socket.close(code, reason)
    // A client that does not read never sees the close frame behind what it did not read: cut it off.
    setTimeout(() => this.socket.terminate(), 5000).unref()
  }
}
