/**
 * The live channel: WebSocket `/api/v1/live` streams alert changes and device state changes (online / offline) of the
 * caller's jurisdiction subtree, and a client that reconnects with its last event id gets what it missed.
 *
 * Every change is an entry of the capped Redis stream `{prefix}live` and a message on the channel
 * `{prefix}live:alerts` carrying the entry id (src/alerts/live.ts, src/broker/presence.ts). The process has one
 * subscriber on that channel for all its sockets (app.ts); {@link LiveHub} parses each message once, looks up the
 * unit's jurisdiction path (ScopeGuard.unitPath, cached: no query per message) and hands it to every socket, which
 * sends it if the unit is in its caller's subtree.
 *
 * Resume without a gap or a duplicate: a socket is registered (buffering what the channel brings) before the stream
 * is read from its position; the range is sent, then the buffer, skipping every id not after the last one handled.
 * The same catch-up runs again for every socket when the shared subscriber was cut off and is back.
 *
 * Browsers cannot set headers on a WebSocket, so the credentials come as `?token=` (or `Authorization: Bearer`), and
 * every refusal happens after the upgrade as a close code a browser can read (a 401 before the upgrade shows in a
 * browser as a bare 1006, indistinguishable from a network failure):
 *
 *   4400 bad query (lastEventId not a stream id) · 4401 missing, wrong, expired or revoked credentials (re-checked
 *   with every keep-alive) · 4408 too slow: the client does not read what it is sent · 1001 server stopping ·
 *   1011 a backing service failed (reconnect with lastEventId) · 1013 not ready yet (try again)
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { WebSocket, RawData } from 'ws'
import type { Logger } from '../../logger.js'
import type { AuthService } from '../../auth/auth-service.js'
import type { ScopeGuard } from '../../auth/scope.js'
import { can } from '../../auth/principal.js'
import { FirewatchError } from '../../errors.js'
import { DEFAULT_LIMITS, LIVE_CLOSE, type LiveLimits } from './protocol.js'
import { cmp, idText, parseId, type Id } from './stream-id.js'
import { LiveSocket, unitOf, type Item } from './live-socket.js'

export interface LiveHubOptions {
  /** Commands (stream reads, TIME): the app's shared connection. */
  redis: Redis
  /** `{prefix}live` and `{prefix}live:alerts` (LivePublisher's names). */
  stream: string
  channel: string
  auth: AuthService
  guard: ScopeGuard
  log: Logger
  limits?: Partial<LiveLimits>
}

/** The process's live sockets and the one channel subscription they share. */
export class LiveHub {
  readonly limits: LiveLimits
  /** Whether the shared subscriber is subscribed: until then nothing reaches the sockets. */
  attached = false
  private readonly sockets = new Set<LiveSocket>()
  /** Messages are handled one after another: a path looked up for one must not let the next overtake it. */
  private tail: Promise<void> = Promise.resolve()
  private pinger: NodeJS.Timeout | null = null
  private subscriber: Redis | null = null
  private stopped = false

  constructor(private readonly o: LiveHubOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...o.limits }
  }

  /** How many sockets are open (authenticated). */
  get size(): number {
    return this.sockets.size
  }

  /**
   * Use the process's subscriber, already subscribed to the channel: hear its messages, and know when it is cut off
   * (sockets then hold on, and catch up from the stream once it is back).
   */
  attach(subscriber: Redis): void {
    this.subscriber = subscriber
    subscriber.on('message', this.onMessage)
    subscriber.on('close', this.onClose)
    subscriber.on('ready', this.onReady)
    this.attached = subscriber.status === 'ready'
    this.keepAlive(this.limits.pingMs)
  }

  /** Restart the keep-alive at this interval. */
  keepAlive(ms: number): void {
    this.limits.pingMs = ms
    if (this.pinger) clearInterval(this.pinger)
    this.pinger = setInterval(() => this.tick(), ms)
    this.pinger.unref()
  }

  /** Close every socket (1001) and stop listening. */
  stop(): void {
    this.stopped = true
    if (this.pinger) clearInterval(this.pinger)
    this.pinger = null
    this.subscriber?.off('message', this.onMessage)
    this.subscriber?.off('close', this.onClose)
    this.subscriber?.off('ready', this.onReady)
    for (const s of [...this.sockets]) s.close(LIVE_CLOSE.goingAway, 'server stopping')
  }

  forget(s: LiveSocket): void {
    this.sockets.delete(s)
  }

  private readonly onMessage = (channel: string, body: string): void => {
    if (channel !== this.o.channel || this.sockets.size === 0) return
    this.tail = this.tail.then(() => this.route(body))
  }

  private readonly onClose = (): void => {
    if (!this.attached) return
    this.attached = false
    // What is published while the subscriber is away never reaches the channel's listeners: buffer, catch up later.
    for (const s of this.sockets) s.queue ??= []
  }

  private readonly onReady = (): void => {
    // ioredis subscribes again by itself; subscribing here too says when it took effect.
    this.subscriber?.subscribe(this.o.channel).then(
      () => {
        if (this.stopped || this.attached) return
        this.attached = true
        for (const s of this.sockets) void s.catchUp()
      },
      (err: Error) => this.o.log.warn({ err }, 'live channel: subscribing again failed')
    )
  }

  private async route(body: string): Promise<void> {
    let item: Item
    try {
      const message = JSON.parse(body) as { eventId?: unknown }
      const id = typeof message.eventId === 'string' ? parseId(message.eventId) : null
      if (!id) return
      item = { id, text: body, path: await this.pathOf(unitOf(message)) }
    } catch (err) {
      this.o.log.warn({ err }, 'live channel: unreadable message skipped')
      return
    }
    for (const s of this.sockets) s.offer(item)
  }

  private async pathOf(unitId: string | null): Promise<string[] | null | undefined> {
    if (!unitId) return null
    try {
      return await this.o.guard.unitPath(unitId)
    } catch (err) {
      this.o.log.warn({ err, unitId }, 'live channel: unit path lookup failed')
      return undefined
    }
  }

  /** Stream entries after `after`, one page, as items (a failed path lookup throws: the caller closes the socket). */
  async range(after: Id): Promise<Item[]> {
    const entries = (await this.o.redis.xrange(this.o.stream, `(${idText(after)}`, '+', 'COUNT', this.limits.page)) as [string, string[]][]
    const items: Item[] = []
    for (const [entryId, fields] of entries) {
      const id = parseId(entryId)
      const stored = fields[1]
      if (!id || fields[0] !== 'm' || !stored?.endsWith('}')) continue
      let message: unknown
      try {
        message = JSON.parse(stored)
      } catch {
        this.o.log.warn({ entryId }, 'live channel: unreadable stream entry skipped')
        continue
      }
      const unitId = unitOf(message)
      // The text the channel carries: the stored JSON with its entry id added (as the publish script does).
      items.push({ id, text: `${stored.slice(0, -1)},"eventId":"${entryId}"}`, path: unitId ? await this.o.guard.unitPath(unitId) : null })
    }
    return items
  }

  /**
   * Where a socket starts: after `from` (its last event id), or, without one, now (Redis's clock: a position that
   * says nothing about any change). `reset` when the stream cannot give everything after `from`: entries after it
   * were trimmed, or the id is from the future (not this stream's); the socket then starts now.
   */
  async start(from: Id | null): Promise<{ cursor: Id; reset?: string }> {
    const [info, time] = await Promise.all([
      this.o.redis.xinfo('STREAM', this.o.stream).catch((err: Error) => {
        if (/no such key/i.test(err.message)) return null
        throw err
      }) as Promise<unknown[] | null>,
      this.o.redis.time()
    ])
    const nowMs = BigInt(String(time[0])) * 1000n + BigInt(String(time[1])) / 1000n
    const now: Id = [nowMs - 1n, 0n]
    if (!from) return { cursor: now }
    if (!info) return from[0] > nowMs ? { cursor: now, reset: 'unknown event id' } : { cursor: from }
    const field = (name: string): unknown => {
      const i = info.indexOf(name)
      return i < 0 ? undefined : info[i + 1]
    }
    const last = parseId(String(field('last-generated-id'))) ?? [0n, 0n]
    const first = field('first-entry') as [string, unknown] | null | undefined
    const firstId = first ? parseId(first[0]) : null
    // Redis 7 counts the entries ever added; before it, assume some were trimmed.
    const added = field('entries-added')
    const removed = added === undefined || Number(added) > Number(field('length'))
    if (cmp(from, last) > 0 && from[0] > nowMs) return { cursor: now, reset: 'unknown event id' }
    // Something was trimmed, and it may have been after `from` (the stream cannot say how much after, so: when
    // `from` is older than the oldest entry kept).
    if (removed && (firstId ? cmp(from, firstId) < 0 : cmp(from, last) < 0)) return { cursor: now, reset: 'history trimmed' }
    return { cursor: from }
  }

  /** A socket just upgraded: check the credentials, then start it. */
  accept(socket: WebSocket, token: string | null, lastEventId: string | null, log: FastifyBaseLogger): void {
    // Clients have nothing to say on this channel (the plugin's maxPayload bounds what they may send).
    socket.on('message', (_data: RawData) => undefined)
    const refuse = (code: number, reason: string) => {
      log.info({ code, reason }, 'live channel refused')
      socket.close(code, reason)
      setTimeout(() => socket.terminate(), 5000).unref()
    }
    if (!token) return refuse(LIVE_CLOSE.unauthorized, 'a token is required: ?token= or Authorization: Bearer')
    const from = lastEventId === null ? null : parseId(lastEventId)
    if (lastEventId !== null && !from) return refuse(LIVE_CLOSE.badRequest, 'lastEventId is not a stream id (ms-seq)')
    const s = new LiveSocket(socket, token, this, log)
    socket.on('pong', () => (s.alive = true))
    socket.on('close', () => {
      s.closed = true
      this.forget(s)
    })
    void this.open(s, from, refuse)
  }

  private async open(s: LiveSocket, from: Id | null, refuse: (code: number, reason: string) => void): Promise<void> {
    try {
      s.principal = await this.o.auth.principal(s.token)
    } catch (err) {
      if (err instanceof FirewatchError && err.details.statusCode === 401) return refuse(LIVE_CLOSE.unauthorized, err.message)
      s.log.warn({ err }, 'live channel: credentials not checked')
      return refuse(LIVE_CLOSE.internal, 'credentials could not be checked; try again')
    }
    if (!can(s.principal, 'read')) return refuse(LIVE_CLOSE.forbidden, `a ${s.principal.role} may not read`)
    if (s.closed) return
    if (this.stopped) return refuse(LIVE_CLOSE.goingAway, 'server stopping')
    if (!this.attached) return refuse(LIVE_CLOSE.tryAgain, 'live channel not ready; try again')
    // Registered first, buffering: nothing published from here on can fall between the stream read and the channel.
    this.sockets.add(s)
    try {
      const start = await this.start(from)
      if (start.reset) s.send(JSON.stringify({ type: 'reset', reason: start.reset }))
      s.cursor = start.cursor
      s.position = from && !start.reset ? idText(from) : idText(start.cursor)
    } catch (err) {
      s.log.warn({ err }, 'live channel: the stream is not readable')
      return s.close(LIVE_CLOSE.internal, 'live history unavailable; try again')
    }
    s.log.info({ principal: s.principal.name, scope: s.principal.scope, resume: from !== null }, 'live channel open')
    await s.catchUp()
  }

  /** Keep-alive: cut sockets that did not answer the last ping; re-check every socket's credentials. */
  private tick(): void {
    for (const s of this.sockets) {
      if (!s.alive) {
        s.log.info({ principal: s.principal.name }, 'live channel: no answer to the keep-alive; connection cut')
        s.closed = true
        this.forget(s)
        s.socket.terminate()
        continue
      }
      s.alive = false
      s.socket.ping()
      this.o.auth.principal(s.token).then(
        (p) => {
          if (p.scope !== s.principal.scope || p.role !== s.principal.role) s.close(LIVE_CLOSE.unauthorized, 'the credentials changed; connect again')
        },
        (err: unknown) => {
          if (err instanceof FirewatchError && err.details.statusCode === 401) s.close(LIVE_CLOSE.unauthorized, err.message)
        }
      )
    }
  }
}

