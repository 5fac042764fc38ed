/**
 * The rule engine end to end: device traffic over MQTT → ingest log → rule engine → alerts in PostgreSQL, live
 * messages on Redis pub/sub and MQTT, BullMQ timers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { Redis } from 'ioredis'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ADMIN_TOKEN, REDIS_URL, apiWithToken, loginAt, startTestApp, uniqueNames, waitFor, type TestApp } from './helpers/env.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'
import { jobId } from '../src/rules/jobs.js'

let t: TestApp
const clients: mqtt.MqttClient[] = []
beforeAll(async () => {
  t = await startTestApp(undefined, { RULE_ENGINE: 'true', ESCALATE_AFTER_MS: '1500', ESCALATE_REMIND_MS: '1000', NOTIFY_INTERVAL_MS: '1000', SWEEP_INTERVAL_MS: '500' })
})
afterAll(async () => {
  for (const c of clients) c.end(true)
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

const alertsOf = async (deviceId: string, extra = '', app = t) =>
  (await app.api<{ items: Alert[] }>('GET', `/api/v1/alerts?deviceId=${deviceId}${extra}`)).body.items
const history = async (id: string) => (await t.api<{ transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${id}`)).body.transitions
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Wait until the engine has read everything appended so far (its consumer group has no lag and nothing pending). */
async function engineCaughtUp(app = t): Promise<void> {
  await waitFor(async () => (await app.app.ingestLog.backlog('rule-engine')) === 0, 10_000, 50)
}

describe('rule engine', () => {
  it('raises a fire alert from a panel event, publishes it live, keeps it open after restore', async () => {
    const sub = new Redis(REDIS_URL)
    const live: unknown[] = []
    await sub.subscribe(t.app.live.channel)
    sub.on('message', (_c, m) => live.push(JSON.parse(m)))
    // An integration subscribed to the MQTT alert topics with the integrator login and an API key of every jurisdiction.
    const key = await apiKey(null)
    const integrator = await mqtt.connectAsync(t.mqttUrl, { clientId: '$integration-1', username: '$integrator', password: key, reconnectPeriod: 0 })
    clients.push(integrator)
    const onMqtt: { topic: string; body: { change: string; alert: Alert } }[] = []
    integrator.on('message', (topic, payload) => onMqtt.push({ topic, body: JSON.parse(payload.toString()) }))
    const granted = await integrator.subscribeAsync('v1/alerts/+', { qos: 1 })
    expect(granted.map((g) => g.qos)).toEqual([1])
    // Device topics are not theirs: SUBACK 0x80.
    await expect(integrator.subscribeAsync('v1/devices/#', { qos: 1 })).rejects.toThrow(/Subscribe error/)
    try {
      const dev = await t.provision('alarm_panel')
      const c = await connect(dev)
      await event(c, dev.id, 'fire', '1-02-034', '3F east corridor')
      const [alert] = await waitFor(async () => {
        const a = await alertsOf(dev.id)
        return a.length ? a : null
      })
      expect(alert).toMatchObject({ class: 'fire', severity: 'critical', status: 'open', point: '1-02-034', ruleId: 'fire_event', active: true })
      await waitFor(async () => live.some((m) => (m as { alert?: Alert }).alert?.id === alert!.id))
      const out = await waitFor(async () => onMqtt.find((m) => m.body.alert.id === alert!.id))
      expect(out.topic).toBe(`v1/alerts/${dev.unitId}`)
      expect(out.body.change).toBe('opened')
      // Integrators only listen: a publish closes the connection [MQTT-3.3.5-2].
      const closed = new Promise<void>((r) => integrator.once('close', () => r()))
      integrator.publish(`v1/alerts/${dev.unitId}`, 'x', { qos: 0 })
      await closed
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

/** An operator API key bound to a jurisdiction (null: every one; then an admin key). */
async function apiKey(jurisdictionId: string | null): Promise<string> {
  const res = await t.api<{ key: string }>('POST', '/api/v1/api-keys', { name: `mqtt-${jurisdictionId ?? 'all'}`, role: jurisdictionId ? 'operator' : 'admin', jurisdictionId })
  expect(res.status).toBe(201)
  return res.body.key
}

describe('integrator login', () => {
  it('is refused with a wrong key, and with the bootstrap token (it opens nothing but the first administrator)', async () => {
    for (const password of ['fwk_000000000000_not-a-key-not-a-key-not-a-key-not-a-key-abcd', ADMIN_TOKEN]) {
      await expect(
        mqtt.connectAsync(t.mqttUrl, { clientId: '$integration-2', username: '$integrator', password, reconnectPeriod: 0 })
      ).rejects.toThrow(/Not authorized|Bad username or password/)
    }
  })

  it('with a key bound to a jurisdiction, subscribes to the units of its subtree one by one, never to a wildcard', async () => {
    const dev = await t.provision('alarm_panel')
    const unit = (await t.api<{ jurisdictionId: string }>('GET', `/api/v1/units/${dev.unitId}`)).body
    const elsewhere = await t.api<{ id: string }>('POST', '/api/v1/jurisdictions', { name: 'Other City', level: 'city' })
    const c = await mqtt.connectAsync(t.mqttUrl, { clientId: '$integration-3', username: '$integrator', password: await apiKey(unit.jurisdictionId), reconnectPeriod: 0 })
    clients.push(c)
    expect((await c.subscribeAsync(`v1/alerts/${dev.unitId}`, { qos: 1 })).map((g) => g.qos)).toEqual([1])
    await expect(c.subscribeAsync('v1/alerts/+', { qos: 1 })).rejects.toThrow(/Subscribe error/)
    await expect(c.subscribeAsync('v1/alerts/no-such-unit', { qos: 1 })).rejects.toThrow(/Subscribe error/)
    const c2 = await mqtt.connectAsync(t.mqttUrl, { clientId: '$integration-4', username: '$integrator', password: await apiKey(elsewhere.body.id), reconnectPeriod: 0 })
    clients.push(c2)
    await expect(c2.subscribeAsync(`v1/alerts/${dev.unitId}`, { qos: 1 })).rejects.toThrow(/Subscribe error/)
  })
})

describe('edge-triggered thresholds', () => {
  it('makes one alert, not a hundred, of a pressure oscillating around the high limit', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const c = await connect(dev)
    const start = Date.now() - 100_000
    // 1.19 / 1.21 around the 1.2 MPa limit; the clear level is 1.15, so the alert stays raised, once.
    for (let i = 0; i < 100; i++) await reading(c, dev.id, { pressure_mpa: i % 2 ? 1.19 : 1.21 }, start + i * 1000)
    await engineCaughtUp()
    const alerts = await alertsOf(dev.id)
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ ruleId: 'pressure_high', class: 'supervisory', count: 1, status: 'open', active: true })
    expect((await history(alerts[0]!.id)).map((h) => h.action)).toEqual(['opened'])
    // Back below the clear level: the supervisory clears itself, recorded as such.
    await reading(c, dev.id, { pressure_mpa: 1.1 })
    // (a drop of 0.11 MPa in a second is also a fast drop: another rule's alert, not this one's)
    const [cleared] = await waitFor(async () => {
      const a = await alertsOf(dev.id, '&ruleId=pressure_high')
      return a[0]?.status === 'resolved' ? a : null
    })
    expect(cleared).toMatchObject({ disposition: 'restored', resolvedBy: 'system', active: false })
  })

  it('starts one duration timer for a pressure oscillating around the low limit, and raises once when it fires', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const c = await connect(dev)
    const start = Date.now() - 100_000
    for (let i = 0; i < 100; i++) await reading(c, dev.id, { pressure_mpa: i % 2 ? 0.051 : 0.049 }, start + i * 1000)
    await engineCaughtUp()
    const counts = await t.app.jobs.counts()
    const id = jobId('dur', dev.id, 'pressure_low', '', start)
    const job = await t.app.jobs.getJob('timers', id)
    expect(job, `a delayed job ${id} (delayed: ${counts.timers?.delayed})`).toBeTruthy()
    // The 2 min of GB 50084 practice, counted from the first low reading.
    expect(job!.opts.delay).toBeGreaterThan(0)
    await job!.promote()
    const alerts = await waitFor(async () => {
      const a = await alertsOf(dev.id)
      return a.length ? a : null
    })
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ ruleId: 'pressure_low', class: 'supervisory', count: 1 })
  })
})

describe('troubles and fire alerts on restore', () => {
  it('clears a trouble by itself and leaves a fire alert for a person', async () => {
    const dev = await t.provision('alarm_panel')
    const c = await connect(dev)
    await event(c, dev.id, 'fault', '2-01-007', 'loop 2 open circuit')
    await event(c, dev.id, 'fire', '2-01-008')
    await waitFor(async () => (await alertsOf(dev.id)).length === 2)
    await event(c, dev.id, 'reset') // a panel reset (no point) restores every point
    await waitFor(async () => (await alertsOf(dev.id, '&status=resolved')).length === 1)
    const [trouble] = await alertsOf(dev.id, '&class=trouble')
    expect(trouble).toMatchObject({ status: 'resolved', disposition: 'restored', troubleType: 'fault' })
    const [fire] = await waitFor(async () => {
      const a = await alertsOf(dev.id, '&class=fire')
      return a[0] && !a[0].active ? a : null
    })
    expect(fire!.status).toBe('open')
    const refused = await t.api('POST', `/api/v1/alerts/${fire!.id}/resolve`, {})
    expect(refused.status).toBe(400)
    const done = await t.api<Alert>('POST', `/api/v1/alerts/${fire!.id}/resolve`, { disposition: 'false_alarm', comment: 'dust in detector' })
    expect(done.body).toMatchObject({ status: 'resolved', disposition: 'false_alarm' })
  })
})

describe('escalation', () => {
  it('escalates and reminds when nobody acknowledges a fire alert', async () => {
    const dev = await t.provision('alarm_panel')
    const c = await connect(dev)
    await event(c, dev.id, 'fire', '3-01-001')
    const [alert] = await waitFor(async () => {
      const a = await alertsOf(dev.id)
      return a.length ? a : null
    })
    const steps = await waitFor(async () => {
      const h = (await history(alert!.id)).map((x) => x.action)
      return h.includes('reminded') ? h : null
    }, 8000)
    expect(steps.slice(0, 3)).toEqual(['opened', 'escalated', 'reminded'])
    await t.api('POST', `/api/v1/alerts/${alert!.id}/ack`, { comment: 'on it' })
    const after = (await history(alert!.id)).length
    await sleep(2500)
    expect((await history(alert!.id)).length).toBe(after)
  })

  it('does not escalate a fire alert acknowledged in time', async () => {
    const dev = await t.provision('alarm_panel')
    // The operator on duty for the unit's city acknowledges (logged in beforehand: escalation waits 1.5 s only).
    const { body: unit } = await t.api<{ jurisdictionId: string }>('GET', `/api/v1/units/${dev.unitId}`)
    const operator = { username: 'operator-7', displayName: 'Operator 7', password: 'operator-7-password', role: 'operator', jurisdictionId: unit.jurisdictionId }
    expect((await t.api('POST', '/api/v1/users', operator)).status).toBe(201)
    const base = `http://127.0.0.1:${t.httpPort}`
    const { accessToken } = await loginAt(base, operator.username, operator.password)
    const asOperator = apiWithToken(base, () => accessToken)
    const c = await connect(dev)
    await event(c, dev.id, 'fire', '3-01-002')
    const [alert] = await waitFor(async () => {
      const a = await alertsOf(dev.id)
      return a.length ? a : null
    })
    // The actor recorded is who is logged in.
    expect((await asOperator('POST', `/api/v1/alerts/${alert!.id}/ack`, {})).status).toBe(200)
    await sleep(3000)
    const h = await history(alert!.id)
    expect(h.map((x) => x.action)).toEqual(['opened', 'acknowledged'])
    expect(h[1]!.actor).toBe('operator-7')
    const [now] = await alertsOf(dev.id)
    expect(now!.escalationLevel).toBe(0)
  })
})

describe('duration timers across a restart', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-rules-'))
  writeFileSync(
    path.join(dir, 'short.yaml'),
    [
      'rules:',
      '  - id: low_short',
      '    title: Pressure low for 20 s',
      '    class: supervisory',
      '    severity: major',
      '    kinds: [sprinkler_pressure]',
      '    when: { threshold: { metric: pressure_mpa, below: 0.05, clear: 0.06 } }',
      '    forS: 20'
    ].join('\n')
  )
  const names = uniqueNames('restart')
  const env = { RULE_ENGINE: 'true', RULES_DIR: dir, SWEEP_INTERVAL_MS: '60000' }
  let app: TestApp
  afterAll(async () => {
    await app?.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  it('fires a timer started before the restart; never fires one whose condition restored', async () => {
    app = await startTestApp(names, env)
    const fires = await provisionOn(app, 'sprinkler_pressure')
    const restores = await provisionOn(app, 'sprinkler_pressure')
    const lowAt = Date.now()
    for (const dev of [fires, restores]) {
      const c = await mqtt.connectAsync(app.mqttUrl, { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0 })
      await c.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ ts: lowAt, seq: 1, values: { pressure_mpa: 0.02 } }), { qos: 1 })
      await c.endAsync()
    }
    await engineCaughtUp(app)
    expect((await app.app.jobs.counts()).timers!.delayed).toBeGreaterThanOrEqual(2)
    await app.stop()

    app = await startTestApp(names, env)
    const c = await mqtt.connectAsync(app.mqttUrl, { clientId: restores.id, username: restores.id, password: restores.secret, reconnectPeriod: 0 })
    await c.publishAsync(`v1/devices/${restores.id}/telemetry`, JSON.stringify({ seq: 2, values: { pressure_mpa: 0.3 } }), { qos: 1 })
    await c.endAsync()
    await engineCaughtUp(app)
    // The restore must have been evaluated before the timer was due, or this run proves nothing.
    expect(Date.now() - lowAt, 'the restart and restore took longer than the 20 s timer').toBeLessThan(20_000)
    const [alert] = await waitFor(async () => {
      const a = await alertsOf(fires.id, '', app)
      return a.length ? a : null
    }, 30_000)
    expect(alert).toMatchObject({ ruleId: 'low_short', status: 'open' })
    // Well past the restored device's due time.
    await sleep(1500)
    expect(await alertsOf(restores.id, '', app)).toEqual([])
  })
})

async function provisionOn(app: TestApp, kind: string) {
  return app.provision(kind)
}
