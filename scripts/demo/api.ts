import { randomBytes } from 'node:crypto'
import { DemoError, Stopped } from './errors.js'

/**
 * Sign in as the demo's administrator: create it with the bootstrap token (FIREWATCH_ADMIN_TOKEN opens nothing else),
 * log in, and make an API key for the rest of the run (access tokens expire; the key lasts until revoked).
 */
export async function demoCredentials(base: string, adminToken: string, stop: AbortSignal): Promise<{ username: string; password: string; apiKey: string }> {
  const username = 'admin'
  const password = randomBytes(9).toString('base64url')
  await new Api(base, adminToken, stop).call('POST', '/api/v1/auth/bootstrap', { username, password, displayName: '演示管理员 Demo administrator' })
  const session = await new Api(base, '', stop).call<{ accessToken: string }>('POST', '/api/v1/auth/login', { username, password })
  const created = await new Api(base, session.accessToken, stop).call<{ key: string }>('POST', '/api/v1/api-keys', { name: 'demo', role: 'admin', jurisdictionId: null })
  return { username, password, apiKey: created.key }
}

/** The server's HTTP API with a bearer token: JSON in and out, an error response turned into a DemoError. */
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
