/** Readings and events of one device, read back from InfluxDB. A device outside the caller's scope answers 404. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply, Events, EventsQuery, IdParams, Readings, ReadingsQuery } from '../../../schemas/api.js'
import type { RegistryRepository } from '../../store/registry-repository.js'
import type { ProfileMap } from '../../ingest/profiles.js'
import { MEASUREMENTS, quoteIdent, quoteString, type TelemetryStore } from '../../store/influx.js'
import { FirewatchError } from '../../errors.js'

export interface TelemetryDeps {
  registry: RegistryRepository
  profiles: ProfileMap
  store: TelemetryStore
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply }
const DAY = 24 * 3600 * 1000

/** A query's time range in epoch ms: `to` defaults to now, `from` to `span` before `to`. */
export function range(from: string | undefined, to: string | undefined, span = DAY): { from: number; to: number } {
  const end = to ? Date.parse(to) : Date.now()
  const start = from ? Date.parse(from) : end - span
  // RFC 3339 allows times JavaScript cannot represent (a leap second :60).
  if (Number.isNaN(start)) throw new FirewatchError('FW_ERR_VALIDATION', 'from is not a representable time', { statusCode: 400, field: 'from' })
  if (Number.isNaN(end)) throw new FirewatchError('FW_ERR_VALIDATION', 'to is not a representable time', { statusCode: 400, field: 'to' })
  if (start >= end) throw new FirewatchError('FW_ERR_VALIDATION', 'from must be before to', { statusCode: 400, field: 'from' })
  return { from: start, to: end }
}

/** An aggregate over more intervals than this is a scan nobody reads: refused, not run. */
const MAX_BUCKETS = 10_000
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const everyMs = (every: string) => Number(every.slice(0, -1)) * UNIT_MS[every.slice(-1) as keyof typeof UNIT_MS]

const timeClause = (r: { from: number; to: number }) => `time >= ${r.from}ms AND time < ${r.to}ms`

export const telemetryRoutes =
  ({ registry, profiles, store }: TelemetryDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    const device = async (id: string) => {
      const d = await registry.getDevice(id)
      if (!d) throw new FirewatchError('FW_ERR_NOT_FOUND', `device ${id} does not exist`, { statusCode: 404 })
      return d
    }

    app.get(
      '/devices/:id/readings',
      { config: { scope: 'device' }, schema: { tags: ['telemetry'], params: IdParams, querystring: ReadingsQuery, response: { 200: Readings, ...errors } } },
      async (req) => {
        const d = await device(req.params.id)
        const q = req.query
        const known = Object.keys(profiles.get(d.profile)?.metrics ?? {})
        if (q.metric && !known.includes(q.metric)) {
          throw new FirewatchError('FW_ERR_VALIDATION', `${q.metric} is not a metric of ${d.profile} (${known.join(', ')})`, {
            statusCode: 400,
            field: 'metric'
          })
        }
        const metrics = q.metric ? [q.metric] : known
        const r = range(q.from, q.to)
        if (q.every && (r.to - r.from) / everyMs(q.every) > MAX_BUCKETS) {
          throw new FirewatchError('FW_ERR_VALIDATION', `every=${q.every} makes more than ${MAX_BUCKETS} intervals in this range; choose a longer one`, {
            statusCode: 400,
            field: 'every'
          })
        }
        const select = q.every
          ? metrics.map((m) => `mean(${quoteIdent(m)}) AS ${quoteIdent(m)}`).join(', ')
          : metrics.map(quoteIdent).join(', ')
        const group = q.every ? ` GROUP BY time(${q.every}) fill(none)` : ''
        const series = await store.query(
          `SELECT ${select} FROM ${quoteIdent(MEASUREMENTS.readings)} WHERE "device_id" = ${quoteString(d.id)} AND ${timeClause(r)}${group} ORDER BY time DESC LIMIT ${q.limit}`
        )
        const s = series[0]
        // The newest `limit` points of the range, served oldest first.
        const points = (s?.values ?? []).reverse().map((row) => ({
          ts: row[0] as number,
          values: Object.fromEntries(s!.columns.slice(1).map((c, i) => [c, (row[i + 1] as number | null) ?? null]))
        }))
        return {
          deviceId: d.id,
          from: new Date(r.from).toISOString(),
          to: new Date(r.to).toISOString(),
          every: q.every ?? null,
          points
        }
      }
    )

    app.get(
      '/devices/:id/events',
      { config: { scope: 'device' }, schema: { tags: ['telemetry'], params: IdParams, querystring: EventsQuery, response: { 200: Events, ...errors } } },
      async (req) => {
        const d = await device(req.params.id)
        const q = req.query
        const r = range(q.from, q.to)
        const type = q.type ? ` AND "type" = ${quoteString(q.type)}` : ''
        const series = await store.query(
          `SELECT "type", "point", "text", "seq" FROM ${quoteIdent(MEASUREMENTS.events)} WHERE "device_id" = ${quoteString(d.id)}${type} AND ${timeClause(r)} ORDER BY time DESC LIMIT ${q.limit}`
        )
        const s = series[0]
        s?.values.reverse()
        const col = (name: string) => s?.columns.indexOf(name) ?? -1
        const [ti, pi, xi, si] = [col('type'), col('point'), col('text'), col('seq')]
        return {
          deviceId: d.id,
          from: new Date(r.from).toISOString(),
          to: new Date(r.to).toISOString(),
          events: (s?.values ?? []).map((row) => ({
            ts: row[0] as number,
            type: String(row[ti]),
            point: String(row[pi] ?? ''),
            text: String(row[xi] ?? ''),
            seq: (row[si] as number | null) ?? null
          }))
        }
      }
    )
  }
