/**
 * A real HTTP receiver on 127.0.0.1 (an ephemeral port) for webhook and 119 deliveries: it answers each request with
 * the next status of its script (then `otherwise`) and keeps every request, with the time it arrived.
 */
import { createServer, type Server } from 'node:http'

export interface Received {
  at: number
  path: string
  headers: Record<string, string | string[] | undefined>
  body: string
  status: number
}

export class Receiver {
  readonly requests: Received[] = []
  private server: Server | null = null
  /** Statuses to answer, in order; when empty, `otherwise`. */
  script: number[] = []
  otherwise = 200
  /** The next this many requests get no answer at all (recorded with status 0): the sender's timeout must end them. */
  stall = 0
  private waiters: (() => void)[] = []

  async start(): Promise<number> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (this.stall > 0) {
          this.stall--
          this.requests.push({ at: Date.now(), path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: 0 })
          return
        }
        const status = this.script.shift() ?? this.otherwise
        this.requests.push({ at: Date.now(), path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status })
        res.writeHead(status, status >= 300 && status < 400 ? { location: 'http://127.0.0.1:9/elsewhere' } : {}).end()
        for (const w of this.waiters.splice(0)) w()
      })
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  /** Resolves once a request satisfies `match`, with it. */
  async waitFor(match: (r: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const found = this.requests.find(match)
      if (found) return found
      if (Date.now() > end) throw new Error(`no matching request in ${timeoutMs} ms (${this.requests.length} received)`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, end - Date.now()))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}
