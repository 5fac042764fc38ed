/** Online / last seen from connections, status messages and the will; MQTT over TLS. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import mqtt from 'mqtt'
import { startTestApp, waitFor, type TestApp } from './helpers/env.js'

const dir = mkdtempSync(path.join(tmpdir(), 'fw-tls-'))
const cert = path.join(dir, 'cert.pem')
const key = path.join(dir, 'key.pem')

let t: TestApp
beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], {
    stdio: 'ignore'
  })
  t = await startTestApp(undefined, { MQTT_TLS_CERT: cert, MQTT_TLS_KEY: key, MQTT_TLS_PORT: '0' })
})
afterAll(async () => {
  await t?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

const device = (id: string) => t.api<{ online: boolean; lastSeenAt: string | null }>('GET', `/api/v1/devices/${id}`).then((r) => r.body)

async function statusPoints(id: string): Promise<boolean[]> {
  const s = await t.app.store.query(`SELECT "online" FROM "device_status" WHERE "device_id" = '${id}'`)
  return (s[0]?.values ?? []).map((r) => r[1] as boolean)
}

describe('presence', () => {
  it('marks a device online while connected, and offline with its will when the connection drops', async () => {
    const dev = await t.provision('smoke_detector')
    const c = await mqtt.connectAsync(t.mqttUrl, {
      clientId: dev.id,
      username: dev.id,
      password: dev.secret,
      reconnectPeriod: 0,
      will: { topic: `v1/devices/${dev.id}/status`, payload: Buffer.from('"offline"'), qos: 1, retain: true }
    })
    await c.publishAsync(`v1/devices/${dev.id}/status`, '"online"', { qos: 1, retain: true })
    const online = await waitFor(async () => {
      const d = await device(dev.id)
      return d.online ? d : null
    })
    expect(online.lastSeenAt).not.toBeNull()

    // Drop the TCP connection without DISCONNECT: the broker publishes the will.
    c.stream.destroy()
    await waitFor(async () => !(await device(dev.id)).online)
    expect(await waitFor(async () => ((await statusPoints(dev.id)).length === 2 ? statusPoints(dev.id) : null))).toEqual([true, false])
    c.end(true)
  })

  it('does not mark a device offline when its stale connection closes after it reconnected, nor store that will', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const will = { topic: `v1/devices/${dev.id}/status`, payload: Buffer.from('"offline"'), qos: 1 as const, retain: true }
    const opts = { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0, will }
    const first = await mqtt.connectAsync(t.mqttUrl, opts)
    await first.publishAsync(`v1/devices/${dev.id}/status`, '"online"', { qos: 1, retain: true })
    const second = await mqtt.connectAsync(t.mqttUrl, opts) // takes over the session; the broker closes `first`
    await waitFor(async () => !first.connected)
    await second.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ seq: 1, values: { pressure_mpa: 0.3 } }), { qos: 1 })
    await new Promise((r) => setTimeout(r, 1500)) // past a presence flush
    expect((await device(dev.id)).online).toBe(true)
    expect(await statusPoints(dev.id)).toEqual([true])
    await second.endAsync()
    await waitFor(async () => !(await device(dev.id)).online)
    first.end(true)
  })
})

describe('MQTT over TLS', () => {
  it('accepts a device on the TLS port and stores its reading', async () => {
    const dev = await t.provision('water_level')
    const tlsPort = t.app.broker!.tlsPort!
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
      clientId: dev.id,
      username: dev.id,
      password: dev.secret,
      reconnectPeriod: 0,
      ca: readFileSync(cert),
      servername: 'localhost'
    })
    await c.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ seq: 1, values: { level_m: 3.2 } }), { qos: 1 })
    await c.endAsync()
    const r = await waitFor(async () => {
      const res = await t.api<{ points: { values: Record<string, number | null> }[] }>('GET', `/api/v1/devices/${dev.id}/readings?metric=level_m`)
      return res.body.points.length ? res.body.points : null
    })
    expect(r[0]!.values.level_m).toBe(3.2)
  })
})
