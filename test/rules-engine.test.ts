/**
 * The rule engine end to end: device traffic over MQTT → ingest log → rule engine → alerts in PostgreSQL, live
 * messages on Redis pub/sub and MQTT, BullMQ timers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { Redis } from 'ioredis'
import { REDIS_URL, startTestApp, waitFor, type TestApp } from './helpers/env.js'
import type { Alert } from '../schemas/alerts.js'

let t: TestApp
const clients: mqtt.MqttClient[] = []
beforeAll(async () => {
  t = await startTestApp(undefined, { ESCALATE_AFTER_MS: '1500', ESCALATE_REMIND_MS: '1000', NOTIFY_INTERVAL_MS: '1000', SWEEP_INTERVAL_MS: '500' })
})
afterAll(async () => {
  for (const c of clients) await c.endAsync().catch(() => undefined)
  await t?.dispose()
})

async function connect(dev: { id: string; secret: string }): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(t.mqttUrl, { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0 })
  clients.push(c)
  return c
}
let seq = 0
const event = (c: mqtt.MqttClient, id: string, type: string, point = '', text?: string) =>
  c.publishAsync(`v1/devices/${id}/events`, JSON.stringify({ ts: Date.now(), seq: ++seq, type, point, ...(text ? { text } : {}) }), { qos: 1 })
const reading = (c: mqtt.MqttClient, id: string, values: Record<string, number>, ts = Date.now()) =>
  c.publishAsync(`v1/devices/${id}/telemetry`, JSON.stringify({ ts, seq: ++seq, values }), { qos: 1 })

const alertsOf = async (deviceId: string, extra = '') =>
  (await t.api<{ items: Alert[] }>('GET', `/api/v1/alerts?deviceId=${deviceId}${extra}`)).body.items

describe('rule engine', () => {
  it('raises a fire alert from a panel event, publishes it live, keeps it open after restore', async () => {
    const sub = new Redis(REDIS_URL)
    const live: unknown[] = []
    await sub.subscribe(t.app.live.channel)
    sub.on('message', (_c, m) => live.push(JSON.parse(m)))
    try {
      const dev = await t.provision('alarm_panel')
      const c = await connect(dev)
      await event(c, dev.id, 'fire', '1-02-034', '3F east corridor')
      const [alert] = await waitFor(async () => {
        const a = await alertsOf(dev.id)
        return a.length ? a : null
      })
      expect(alert).toMatchObject({ class: 'fire', severity: 'critical', status: 'open', point: '1-02-034', ruleId: 'fire_event', active: true })
      await waitFor(async () => live.some((m) => (m as { alert: Alert }).alert.id === alert!.id))
      await event(c, dev.id, 'restore', '1-02-034')
      const restored = await waitFor(async () => {
        const [a] = await alertsOf(dev.id)
        return a && !a.active ? a : null
      })
      expect(restored.status).toBe('open')
    } finally {
      sub.disconnect()
    }
  })
})
