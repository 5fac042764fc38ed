/**
 * The one InfluxDB adapter: readings, events and device status in, InfluxQL out, over the v1-compatible HTTP API
 * (`/write` line protocol, `/query` InfluxQL) that InfluxDB 1.x, 2.x (DBRP) and 3 Core all speak.
 * Escaping and number formats come from @influxdata/influxdb-client (ingest messages: line-protocol.ts, the same
 * bytes as its Points); its transport carries the requests.
 */
import { InfluxDB, Point, HttpError, type Transport } from '@influxdata/influxdb-client'
import type { IngestMessage } from '../ingest/types.js'
import { appendLines, MEASUREMENTS, type LineBatch } from './line-protocol.js'

/** Points for {@link InfluxStore.writePoints}, so callers need not import the client library. */
export { Point }

const MAX_LINES_PER_WRITE = 5000
/** Answers meaning the data itself is unacceptable: bad line protocol or field type, too large, unprocessable. */
const REFUSED_DATA = new Set([400, 413, 422])

export { MEASUREMENTS }

export interface InfluxSeries {
  name: string
  columns: string[]
  values: unknown[][]
  tags?: Record<string, string>
}

interface QueryResponse {
  results?: { statement_id: number; series?: InfluxSeries[]; error?: string }[]
  error?: string
}

/** Errors InfluxDB answered with a 4xx: the request itself is wrong, retrying it cannot help. */
export class InfluxRejectedError extends Error {
  override name = 'InfluxRejectedError'
}

export interface TelemetryStore {
  ensureDatabase(): Promise<void>
  /** Write the messages of one ingest-log batch. */
  write(messages: IngestMessage[]): Promise<number>
  query(influxql: string): Promise<InfluxSeries[]>
  ping(): Promise<boolean>
  dropDatabase(): Promise<void>
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

/**
 * `user:password` (InfluxDB 1.x users; 2.x accepts user:token the same way) goes as HTTP Basic, which every 1.x
 * release understands; anything else is an API token (`Authorization: Token …`, 2.x and 3.x).
 */
function auth(token: string | null): { token?: string; headers?: Record<string, string> } {
  if (!token) return {}
  if (token.includes(':')) return { headers: { authorization: `Basic ${Buffer.from(token).toString('base64')}` } }
  return { token }
}

export interface InfluxStoreOptions {
  url: string
  database: string
  token: string | null
  /** Per request. @defaultValue 10000 */
  timeoutMs?: number
}

export class InfluxStore implements TelemetryStore {
  private readonly transport: Transport
  private readonly db: string

  constructor(options: InfluxStoreOptions) {
    const client = new InfluxDB({ url: options.url, timeout: options.timeoutMs ?? 10_000, ...auth(options.token) })
    this.transport = client.transport
    this.db = options.database
  }

  get database(): string {
    return this.db
  }

  async ensureDatabase(): Promise<void> {
    await this.command(`CREATE DATABASE ${quoteIdent(this.db)}`)
  }

  async dropDatabase(): Promise<void> {
    await this.command(`DROP DATABASE ${quoteIdent(this.db)}`)
  }

  async write(messages: IngestMessage[]): Promise<number> {
    // InfluxDB's advice is 5,000 lines a request; one batch of 500-item messages could otherwise be 50 MB.
    // A request ends after the message that reaches the limit, so one message is never split over two.
    const bodies: string[] = []
    let written = 0
    const batch: LineBatch = { text: '', lines: 0 }
    for (const m of messages) {
      try {
        appendLines(batch, m)
      } catch (err) {
        // An entry of the wrong shape can never be written: refused like bad data, so it is set aside alone.
        throw new InfluxRejectedError(`entry of ${m.deviceId} cannot be turned into points: ${(err as Error).message}`)
      }
      if (batch.lines >= MAX_LINES_PER_WRITE) {
        bodies.push(batch.text)
        written += batch.lines
        batch.text = ''
        batch.lines = 0
      }
    }
    if (batch.lines > 0) bodies.push(batch.text)
    await this.send(bodies)
    return written + batch.lines
  }

  /** Write points of any measurement (the unit risk history). */
  async writePoints(points: Point[]): Promise<number> {
    const lines: string[] = []
    for (const p of points) {
      const line = p.toLineProtocol()
      if (line) lines.push(line)
    }
    const bodies: string[] = []
    for (let i = 0; i < lines.length; i += MAX_LINES_PER_WRITE) bodies.push(lines.slice(i, i + MAX_LINES_PER_WRITE).join('\n'))
    await this.send(bodies)
    return lines.length
  }

  private async send(bodies: string[]): Promise<void> {
    for (const body of bodies) {
      try {
        await this.post(body)
      } catch (err) {
        // A database dropped or never created (a new InfluxDB, a restored one): create it and write again.
        if (!(err instanceof HttpError && err.statusCode === 404)) throw err
        await this.ensureDatabase()
        await this.post(body)
      }
    }
  }

  private async post(body: string): Promise<void> {
    try {
      await this.transport.request(`/write?db=${encodeURIComponent(this.db)}&precision=ns`, body, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' }
      })
    } catch (err) {
      // Only "this data is bad" is final. Auth (401/403), rate limits and the rest are retried: the backlog waits in
      // the ingest log until an operator fixes the token, rather than being dead-lettered wholesale.
      // InfluxDB 1.x answers 400 for its series and tag limits too ("… limit exceeded"): an operator's fix, not bad data.
      if (err instanceof HttpError && REFUSED_DATA.has(err.statusCode) && !/limit exceeded/.test(err.body ?? '')) {
        throw new InfluxRejectedError(`InfluxDB refused the batch (${err.statusCode}): ${err.body}`)
      }
      throw err
    }
  }

  async query(influxql: string): Promise<InfluxSeries[]> {
    const path = `/query?db=${encodeURIComponent(this.db)}&epoch=ms&q=${encodeURIComponent(influxql)}`
    const res = (await this.transport.request(path, '', { method: 'GET' })) as QueryResponse
    const result = res.results?.[0]
    const error = res.error ?? result?.error
    if (error) throw new Error(`InfluxQL error: ${error}`)
    return result?.series ?? []
  }

  /** Reachable and the credentials work: an authenticated query against the database, not just /ping. */
  async ping(): Promise<boolean> {
    try {
      await this.query('SHOW MEASUREMENTS LIMIT 1')
      return true
    } catch (err) {
      // Answered and authenticated; the writer creates the database with its first batch.
      return /database not found/.test((err as Error).message)
    }
  }

  private async command(influxql: string): Promise<void> {
    const res = (await this.transport.request(`/query?q=${encodeURIComponent(influxql)}`, '', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' }
    })) as QueryResponse
    const error = res.error ?? res.results?.[0]?.error
    if (error) throw new Error(`InfluxQL error: ${error}`)
  }
}
