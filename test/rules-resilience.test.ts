/**
 * The rule engine when things go wrong: an entry that can never be evaluated, a batch evaluated again, a listener
 * that fails after the alert was committed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { Redis } from 'ioredis'
import { REDIS_URL, startTestApp, waitFor, type TestApp } from './helpers/env.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'
import { AlertService } from '../src/alerts/alert-service.js'

let t: TestApp
let redis: Redis
beforeAll(async () => {
  t = await startTestApp(undefined, { RULE_ENGINE: 'true', SWEEP_INTERVAL_MS: '60000' })
  redis = new Redis(REDIS_URL)
})
afterAll(async () => {
  redis?.disconnect()
  await t?.dispose()
})

const alertsOf = async (deviceId: string) => (await t.api<{ items: Alert[] }>('GET', `/api/v1/alerts?deviceId=${deviceId}`)).body.items
const history = async (id: string) => (await t.api<{ transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${id}`)).body.transitions

describe('an entry the engine can never evaluate', () => {
  it('goes to the dead-letter stream; the batch around it is evaluated once; other devices keep their alarms', async () => {
    const a = await t.provision('alarm_panel')
    const poisoned = await t.provision('alarm_panel')
    const now = Date.now()
    // Straight into the ingest log, in one batch: a supervisory and its restore, then an event PostgreSQL refuses to
    // store (a NUL in its text: validation stops it at the broker, so only a log written by something else has it).
    const base = { unitId: a.unitId, kind: 'alarm_panel', type: 'event' }
    const stream = t.app.ingestLog.stream
    // One MULTI, so the engine reads the three in one batch.
    const replies = (await redis
      .multi()
      .xadd(stream, '*', 'm', JSON.stringify({ ...base, deviceId: a.id, rx: now, items: [{ ts: now - 2000, seq: 1, type: 'supervisory', point: 'p1' }] }))
      .xadd(stream, '*', 'm', JSON.stringify({ ...base, deviceId: a.id, rx: now, items: [{ ts: now - 1000, seq: 2, type: 'restore', point: 'p1' }] }))
      .xadd(stream, '*', 'm', JSON.stringify({ ...base, deviceId: poisoned.id, rx: now, items: [{ ts: now, seq: 1, type: 'fire', point: 'x', text: 'bad\u0000text' }] }))
      .exec())!
    const bad = replies[2]![1] as string

    const dead = await waitFor(async () => {
      const entries = await redis.xrange(`${t.app.ingestLog.stream}:rules-dead`, '-', '+')
      return entries.length ? entries : null
    }, 20_000)
    const fields = dead[0]![1]
    expect(fields[fields.indexOf('id') + 1]).toBe(bad)
    expect(fields[fields.indexOf('error') + 1]).toMatch(/0x00|unicode|null character/i)
    // The engine thread reports its counters every 200 ms.
    await waitFor(async () => t.app.engine.stats.deadLettered === 1, 5000, 50)

    // The entry held up only its own device: A's supervisory was opened and cleared, once.
    const alerts = await alertsOf(a.id)
    expect(alerts).toHaveLength(1)
    expect((await history(alerts[0]!.id)).map((h) => h.action)).toEqual(['opened', 'cleared'])

    // The whole log delivered again (as after a crash before the acks): nothing already applied happens twice.
    const skippedBefore = t.app.engine.stats.replaysSkipped
    await redis.xgroup('SETID', stream, 'rule-engine', '0')
    // Not a timing claim: a busy machine may take a while to read the log again.
    await waitFor(async () => t.app.engine.stats.replaysSkipped >= skippedBefore + 3, 30_000)
    expect((await history(alerts[0]!.id)).map((h) => h.action)).toEqual(['opened', 'cleared'])
    expect(await alertsOf(a.id)).toHaveLength(1)
    expect(t.app.engine.stats.deadLettered).toBe(1)

    // The engine goes on: a fire alarm published now gets its alert.
    const c = await mqtt.connectAsync(t.mqttUrl, { clientId: a.id, username: a.id, password: a.secret, reconnectPeriod: 0 })
    await c.publishAsync(`v1/devices/${a.id}/events`, JSON.stringify({ seq: 3, type: 'fire', point: 'p9' }), { qos: 1 })
    await c.endAsync()
    await waitFor(async () => (await alertsOf(a.id)).some((x) => x.class === 'fire'))
  })
})

describe('a listener that fails after the alert was committed', () => {
  it('hears of the change again: committed changes are dispatched at least once', async () => {
    const dev = await t.provision('alarm_panel')
    // An AlertService like the engine thread's, over the same database, with one listener that fails once.
    const service = new AlertService(t.app.alerts.repo, pino({ level: 'silent' }))
    const heard: string[] = []
    let failNext = true
    service.on('flaky-test-listener', (alert, change) => {
      if (alert.deviceId !== dev.id) return
      if (failNext) {
        failNext = false
        throw new Error('receiver away')
      }
      if (alert.deviceId === dev.id) heard.push(`${change}:${alert.id}`)
    })
    const { alert } = await service.raise({
      unitId: dev.unitId,
      deviceId: dev.id,
      point: 'loop-1',
      ruleId: 'fault_event',
      class: 'trouble',
      troubleType: 'fault',
      severity: 'minor',
      title: 'Device fault',
      detail: {},
      at: new Date()
    })
    expect(heard).toEqual([])
    // Every instance's engine thread does this every few seconds for changes older than 10 s; here, at once.
    expect(await service.redispatch(0)).toBeGreaterThanOrEqual(1)
    expect(heard).toEqual([`opened:${alert.id}`])
    // Dispatched now: not again.
    await service.redispatch(0)
    expect(heard).toEqual([`opened:${alert.id}`])
  })
})
