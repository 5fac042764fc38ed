import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { REDIS_URL, startTestApp, waitFor, type TestApp } from './helpers/env.js'

const run = promisify(execFile)

/** Publish as the device with mosquitto_pub: an MQTT client independent of the server's own libraries. */
const mosquittoPub = (t: TestApp, dev: { id: string; secret: string }, leaf: string, payload: string) =>
  run('mosquitto_pub', [
    ...['-h', '127.0.0.1', '-p', String(t.mqttPort), '-i', dev.id, '-u', dev.id, '-P', dev.secret, '-q', '1'],
    ...['-t', `v1/devices/${dev.id}/${leaf}`, '-m', payload]
  ])

// One app for the file: every test provisions devices of its own.
let t: TestApp
beforeAll(async () => {
  t = await startTestApp()
})
afterAll(async () => {
  await t?.dispose()
})

describe('a device provisioned through the API, publishing with mosquitto_pub', () => {
  it('gets its reading stored in InfluxDB and served by the readings endpoint', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const ts = Date.now() - 1000
    await mosquittoPub(t, dev, 'telemetry', JSON.stringify({ ts, seq: 7, values: { pressure_mpa: 0.32 } }))

    const rows = await waitFor(async () => {
      const s = await t.app.store.query(`SELECT "pressure_mpa", "seq" FROM "readings" WHERE "device_id" = '${dev.id}'`)
      return s[0]?.values.length ? s[0].values : null
    })
    expect(rows).toEqual([[ts, 0.32, 7]])

    const res = await t.api<{ points: { ts: number; values: Record<string, number | null> }[] }>(
      'GET',
      `/api/v1/devices/${dev.id}/readings?metric=pressure_mpa`
    )
    expect(res.status).toBe(200)
    expect(res.body.points).toEqual([{ ts, values: { pressure_mpa: 0.32 } }])

    const device = await waitFor(async () => {
      const d = await t.api<{ lastSeenAt: string | null }>('GET', `/api/v1/devices/${dev.id}`)
      return d.body.lastSeenAt ? d.body : null
    })
    expect(Date.parse(device.lastSeenAt!)).toBeGreaterThan(ts)
  })

  it('gets its events stored and served by the events endpoint', async () => {
    const dev = await t.provision('alarm_panel')
    const events = [
      { ts: Date.now() - 3000, seq: 1, type: 'fire', point: '1-02-034', text: '3F east corridor' },
      { ts: Date.now() - 2000, seq: 2, type: 'restore', point: '1-02-034' }
    ]
    await mosquittoPub(t, dev, 'events', JSON.stringify(events))
    const res = await waitFor(async () => {
      const r = await t.api<{ events: unknown[] }>('GET', `/api/v1/devices/${dev.id}/events`)
      return r.body.events.length === 2 ? r.body : null
    })
    expect(res.events).toEqual([
      { ts: events[0]!.ts, type: 'fire', point: '1-02-034', text: '3F east corridor', seq: 1 },
      { ts: events[1]!.ts, type: 'restore', point: '1-02-034', text: '', seq: 2 }
    ])
  })
})

describe('events without seq', () => {
  it('keeps two events of a device with the same ts (a one-second panel clock) as two events', async () => {
    const dev = await t.provision('alarm_panel')
    const ts = new Date(Math.floor(Date.now() / 1000) * 1000 - 5000).toISOString()
    for (const point of ['1-02-034', '1-02-035']) {
      await mosquittoPub(t, dev, 'events', JSON.stringify({ ts, type: 'fire', point }))
    }
    const res = await waitFor(async () => {
      const r = await t.api<{ events: { ts: number; point: string }[] }>('GET', `/api/v1/devices/${dev.id}/events`)
      return r.body.events.length >= 2 ? r.body.events : null
    })
    expect(res.map((e) => e.point).sort()).toEqual(['1-02-034', '1-02-035'])
    expect(res.every((e) => e.ts === Date.parse(ts))).toBe(true)
  })
})

describe('reading back', () => {
  it('serves the newest points of the range, oldest first, and means per interval', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const start = Date.now() - 10 * 60_000
    // One reading a minute for ten minutes: 0.30, 0.31, … 0.39.
    const items = Array.from({ length: 10 }, (_, i) => ({ ts: start + i * 60_000, seq: i, values: { pressure_mpa: 0.3 + i / 100 } }))
    await mosquittoPub(t, dev, 'telemetry', JSON.stringify(items))
    type R = { points: { ts: number; values: Record<string, number | null> }[] }
    await waitFor(async () => (await t.api<R>('GET', `/api/v1/devices/${dev.id}/readings`)).body.points.length === 10)

    const last3 = await t.api<R>('GET', `/api/v1/devices/${dev.id}/readings?metric=pressure_mpa&limit=3`)
    expect(last3.body.points.map((p) => p.ts)).toEqual([7, 8, 9].map((i) => start + i * 60_000))

    const from = new Date(start).toISOString()
    const to = new Date(start + 10 * 60_000).toISOString()
    const means = await t.api<R>('GET', `/api/v1/devices/${dev.id}/readings?metric=pressure_mpa&every=5m&from=${from}&to=${to}`)
    // Buckets align to the epoch: compute the expected mean of each five-minute bucket the readings fall in.
    const buckets = new Map<number, number[]>()
    for (const it of items) {
      const b = Math.floor(it.ts / 300_000) * 300_000
      buckets.set(b, [...(buckets.get(b) ?? []), it.values.pressure_mpa])
    }
    const expected = [...buckets].map(([ts, v]) => ({ ts, mean: v.reduce((a, x) => a + x, 0) / v.length }))
    expect(means.body.points.map((p) => p.ts)).toEqual(expected.map((e) => e.ts))
    means.body.points.forEach((p, i) => expect(p.values.pressure_mpa).toBeCloseTo(expected[i]!.mean, 9))

    const bad = await t.api('GET', `/api/v1/devices/${dev.id}/readings?from=${to}&to=${from}`)
    expect(bad).toMatchObject({ status: 400, body: { field: 'from' } })
  })
})

describe('a log entry that is not Firewatch JSON', () => {
  it('goes to the dead-letter stream once, and the readings behind it are stored', async () => {
    const redis = new Redis(REDIS_URL)
    try {
      await redis.xadd(t.app.ingestLog.stream, '*', 'm', '{"not json')
      await redis.xadd(t.app.ingestLog.stream, '*', 'm', '{"json":"but not a device message"}')
      const dev = await t.provision('sprinkler_pressure')
      await mosquittoPub(t, dev, 'telemetry', JSON.stringify({ seq: 1, values: { pressure_mpa: 0.3 } }))
      await waitFor(async () => {
        const r = await t.api<{ points: unknown[] }>('GET', `/api/v1/devices/${dev.id}/readings`)
        return r.body.points.length === 1
      })
      const dead = await redis.xrange(`${t.names.redisPrefix}ingest:dead`, '-', '+')
      expect(dead).toHaveLength(2)
      expect(dead[0]![1]).toEqual(expect.arrayContaining(['{"not json', 'ingest entry is not valid JSON']))
      expect(dead[1]![1]).toEqual(expect.arrayContaining(['ingest entry is not a device message']))
      await waitFor(async () => t.app.writer.stats.deadLettered === 2)
      // Set aside once, acknowledged: nothing waits in the group.
      expect(await t.app.ingestLog.backlog('telemetry-writer')).toBe(0)
    } finally {
      redis.disconnect()
    }
  })
})
