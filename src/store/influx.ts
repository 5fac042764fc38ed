/**
 * The one InfluxDB adapter: readings, events and device status in, InfluxQL out, over the v1-compatible HTTP API
 * (`/write` line protocol, `/query` InfluxQL) that InfluxDB 1.x, 2.x (DBRP) and 3 Core all speak.
 * Points and escaping come from @influxdata/influxdb-client; its transport carries the requests.
 */
import { InfluxDB, Point, HttpError, type Transport } from '@influxdata/influxdb-client'
import type { IngestMessage } from '../ingest/types.js'

/** Points for {@link InfluxStore.writePoints}, so callers need not import the client library. */
export { Point }

const MAX_LINES_PER_WRITE = 5000
/** Answers meaning the data itself is unacceptable: bad line protocol or field type, too large, unprocessable. */
const REFUSED_DATA = new Set([400, 413, 422])

export const MEASUREMENTS = { readings: 'readings', events: 'events', status: 'device_status', unitRisk: 'unit_risk' } as const

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

/**
 * A reading's timestamp in nanoseconds: the device's millisecond time plus a sub-millisecond offset, so two
 * readings of one device in the same millisecond do not overwrite each other, and writing the same reading twice
 * (a replayed log entry, a redelivery) lands on the same point: InfluxDB keeps one.
 */
function nanos(ms: number, offset: number): string {
  return (BigInt(ms) * 1_000_000n + BigInt(offset % 1_000_000)).toString()
}

/**
 * Sub-millisecond offset of an item without a seq: from the device's server-side message number `n` (given by the
 * ingest log, stored in the entry, so a replay reproduces it) and the item's place in the message. Kept apart from
 * seq offsets (below 500,000 ns), so two such items of one device with the same ts collide only ~1,000 messages apart.
 */
function numberedOffset(n: number, index: number): number {
  return 500_000 + ((n * 512 + index) % 500_000)
}

export function toPoints(message: IngestMessage): Point[] {
  const points: Point[] = []
  message.items.forEach((item, index) => {
    const ts = item.ts ?? message.rx
    const seq = (item as { seq?: number }).seq
    const offset = seq === undefined ? numberedOffset(message.n ?? 0, index) : seq % 500_000
    const measurement = MEASUREMENTS[message.type === 'event' ? 'events' : message.type === 'status' ? 'status' : 'readings']
    const p = new Point(measurement)
      .tag('device_id', message.deviceId)
      .tag('unit_id', message.unitId)
      .tag('kind', message.kind)
      .timestamp(nanos(ts, offset))
    if (seq !== undefined) p.intField('seq', seq)
    if (message.type === 'telemetry') {
      for (const [metric, value] of Object.entries(message.items[index]!.values)) p.floatField(metric, value)
    } else if (message.type === 'event') {
      const ev = message.items[index]!
      p.tag('type', ev.type).stringField('point', ev.point ?? '').stringField('text', ev.text ?? '')
    } else {
      p.booleanField('online', message.items[index]!.status === 'online')
    }
    points.push(p)
  })
  return points
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
    const points: Point[] = []
    for (const m of messages) {
      try {
        points.push(...toPoints(m))
      } catch (err) {
        // An entry of the wrong shape can never be written: refused like bad data, so it is set aside alone.
        throw new InfluxRejectedError(`entry of ${m.deviceId} cannot be turned into points: ${(err as Error).message}`)
      }
    }
    return this.writePoints(points)
  }

  /** Write points of any measurement (readings, events, status, the unit risk history). */
  async writePoints(points: Point[]): Promise<number> {
    const lines: string[] = []
    for (const p of points) {
      const line = p.toLineProtocol()
      if (line) lines.push(line)
    }
    // InfluxDB's advice is 5,000 lines a request; one batch of 500-item messages could otherwise be 50 MB.
    for (let i = 0; i < lines.length; i += MAX_LINES_PER_WRITE) {
      const body = lines.slice(i, i + MAX_LINES_PER_WRITE).join('\n')
      try {
        await this.post(body)
      } catch (err) {
        // A database dropped or never created (a new InfluxDB, a restored one): create it and write again.
        if (!(err instanceof HttpError && err.statusCode === 404)) throw err
        await this.ensureDatabase()
        await this.post(body)
      }
    }
    return lines.length
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
