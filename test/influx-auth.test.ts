/**
 * InfluxDB refusing the credentials (401) is an outage to wait out, not bad data: nothing is dead-lettered, the
 * backlog waits in the ingest log, readiness says InfluxDB is not usable, and it all drains once the token is right.
 */
import { afterAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { dropNames, startTestApp, uniqueNames, waitFor, type TestApp } from './helpers/env.js'
import { startPrivateInflux, type PrivateInflux } from './helpers/processes.js'
import { CONSUMER_GROUPS } from '../src/app.js'
import { waitForAllStored } from './helpers/stored-readings.js'

let influx: PrivateInflux | null = null
const apps: TestApp[] = []

afterAll(async () => {
  for (const t of apps) await t.stop().catch(() => undefined)
  if (apps[0]) await dropNames({ ...apps[0].names, influxDb: 'none' }).catch(() => undefined)
  await influx?.destroy()
})

async function query(url: string, q: string, auth?: string): Promise<number> {
  const res = await fetch(`${url}/query?q=${encodeURIComponent(q)}`, {
    method: 'POST',
    headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}
  })
  return res.status
}

describe('InfluxDB refusing the credentials', () => {
  it('retries instead of dead-lettering, then stores everything once the token is right', async () => {
    influx = await startPrivateInflux(true)
    // The first user may be created without credentials; after that every request needs them.
    expect(await query(influx.url, "CREATE USER admin WITH PASSWORD 'pw-0123' WITH ALL PRIVILEGES")).toBe(200)

    const names = uniqueNames('auth')
    const noToken = await startTestApp(names, { INFLUX_URL: influx.url })
    apps.push(noToken)
    const dev = await noToken.provision('sprinkler_pressure')
    const client = await mqtt.connectAsync(noToken.mqttUrl, { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0 })
    const base = Date.now() - 10_000
    const acked = new Set<number>()
    for (let seq = 1; seq <= 50; seq++) {
      await client.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ ts: base + seq, seq, values: { pressure_mpa: 0.3 } }), { qos: 1 })
      acked.add(seq)
    }
    await client.endAsync()

    await waitFor(async () => noToken.app.writer.stats.failures >= 2)
    expect(noToken.app.writer.stats.deadLettered).toBe(0)
    expect(await noToken.app.ingestLog.backlog(CONSUMER_GROUPS.telemetry)).toBeGreaterThan(0)
    const ready = await fetch(`http://127.0.0.1:${noToken.httpPort}/readyz`)
    expect(ready.status).toBe(503)
    expect(await ready.json()).toMatchObject({ checks: { influxdb: expect.not.stringMatching(/^ok$/) } })
    await noToken.stop()
    apps.pop()

    // The operator sets the token (user:password for InfluxDB 1.x) and restarts: the backlog drains.
    const fixed = await startTestApp(names, { INFLUX_URL: influx.url, INFLUX_TOKEN: 'admin:pw-0123' })
    apps.push(fixed)
    await waitForAllStored(fixed.app.store, dev.id, acked, 30_000)
    expect(fixed.app.writer.stats.deadLettered).toBe(0)
  })
})
