/** A client of the live channel (WebSocket /api/v1/live) for tests: every message kept, waits by predicate. */
import WebSocket from 'ws'

export interface LiveMessage {
  type: string
  eventId?: string
  [key: string]: unknown
}

export class LiveClient {
  readonly messages: LiveMessage[] = []
  closed: { code: number; reason: string } | null = null
  private readonly changed = new Set<() => void>()

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as LiveMessage)
      this.notify()
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) }
      this.notify()
    })
    ws.on('error', () => undefined)
  }

  /**
   * Connect to the server on this port; resolves once the upgrade is done (before the server checked anything).
   * `query`: token, lastEventId. `options`: headers, or `autoPong: false` to play dead.
   */
  static connect(httpPort: number, query: Record<string, string> = {}, options: { headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<LiveClient> {
    const qs = new URLSearchParams(query).toString()
    const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/api/v1/live${qs ? `?${qs}` : ''}`, options)
    const client = new LiveClient(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client))
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
      ws.once('error', reject)
    })
  }

  /** Connect and wait for `ready` (the backlog, if any, came before it). */
  static async open(httpPort: number, token: string, lastEventId?: string): Promise<LiveClient> {
    const client = await LiveClient.connect(httpPort, { token, ...(lastEventId ? { lastEventId } : {}) })
    await client.next((m) => m.type === 'ready')
    return client
  }

  private notify(): void {
    for (const fn of [...this.changed]) fn()
  }

  /** The first message (received already or to come) that matches; `from`: the first index to look at. */
  next(match: (m: LiveMessage) => boolean, timeoutMs = 5000, from = 0): Promise<LiveMessage> {
    return this.until(() => this.messages.slice(from).find(match), timeoutMs, 'no matching message')
  }

  /** How the server closed the connection. */
  whenClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed ?? undefined, timeoutMs, 'not closed')
  }

  /** The messages before `ready` (a resumed client's backlog). */
  backlog(): LiveMessage[] {
    const i = this.messages.findIndex((m) => m.type === 'ready')
    return i < 0 ? [] : this.messages.slice(0, i)
  }

  /** The eventId of the latest message that had one, or `ready`'s. */
  lastEventId(): string {
    for (let i = this.messages.length - 1; i >= 0; i--) if (this.messages[i]!.eventId) return this.messages[i]!.eventId!
    throw new Error('no event id received')
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.ws.close()
    return this.whenClosed().then(() => undefined)
  }

  private until<T>(get: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = get()
    if (now !== undefined) return Promise.resolve(now)
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = get()
        if (v === undefined) return
        done()
        resolve(v)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${what} within ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(0, 2000)}; closed ${JSON.stringify(this.closed)}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.changed.delete(check)
      }
      this.changed.add(check)
    })
  }
}
