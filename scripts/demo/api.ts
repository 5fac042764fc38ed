import { DemoError, Stopped } from './errors.js'

/** The server's HTTP API as the admin: JSON in and out, an error response turned into a DemoError. */
export class Api {
  constructor(
    readonly base: string,
    private readonly token: string,
    private readonly stop: AbortSignal
  ) {}

  async call<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
    if (this.stop.aborted) throw new Stopped()
    let res: Response
    try {
      res = await fetch(`${this.base}${route}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([this.stop, AbortSignal.timeout(15_000)])
      })
    } catch (err) {
      if (this.stop.aborted) throw new Stopped()
      throw new DemoError(`${method} ${route} failed: ${(err as Error).message}`)
    }
    const text = await res.text()
    if (!res.ok) {
      let message = text.slice(0, 300)
      try {
        const e = JSON.parse(text) as { code?: string; message?: string }
        if (e.message) message = `${e.code ?? ''} ${e.message}`.trim()
      } catch {
        // not JSON
      }
      throw new DemoError(`${method} ${route} answered ${res.status}: ${message}`)
    }
    return JSON.parse(text) as T
  }
}
