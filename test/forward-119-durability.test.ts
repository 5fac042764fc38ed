/**
 * The 119 forward survives the process that confirmed the alarm: a server process answers the operator's confirm, its
 * forward thread starts sending (the receiver does not answer that attempt) and the process is SIGKILLed in the middle
 * of it; an instance that starts next, without the rule engine, takes the forward up once its lock has expired and
 * delivers it, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiAt, createUnitAt, startTestApp, testEnv, uniqueNames, waitFor, type TestApp } from './helpers/env.js'
import { freePort, killAll, startServerProcess } from './helpers/processes.js'
import { Receiver } from './helpers/receiver.js'

const names = uniqueNames('fwd')
const receiver = new Receiver()
let forward: Record<string, string>
let t: TestApp | null = null

beforeAll(async () => {
  const port = await receiver.start()
  forward = { FORWARD_119_URL: `http://127.0.0.1:${port}/119`, FORWARD_119_SECRET: 'forward-119-secret-for-the-tests-0123456789' }
})
afterAll(async () => {
  await killAll()
  await t?.dispose()
  await receiver.stop()
})

describe('119 forward across a crash', () => {
  it('is forwarded by the next instance when the confirming process is killed while sending it', async () => {
    // The registry and the alarm, from an instance that forwards nothing (no FORWARD_119_URL).
    t = await startTestApp(names)
    const unitId = await createUnitAt(t.api)
    const { alert } = await t.app.alerts.raise({
      unitId,
      deviceId: 'panel-1',
      point: '1-001',
      ruleId: 'fire_event',
      class: 'fire',
      troubleType: null,
      severity: 'critical',
      title: 'manual call point',
      detail: {},
      at: new Date()
    })

    const httpPort = await freePort()
    const server = await startServerProcess(testEnv(names, { ...forward, HTTP_PORT: String(httpPort), FORWARD_119_TIMEOUT_MS: '3000', LOG_LEVEL: 'info' }))
    receiver.stall = 1
    const r = await apiAt(`http://127.0.0.1:${httpPort}`)('POST', `/api/v1/alerts/${alert.id}/confirm`, { comment: 'confirmed by phone' })
    expect(r.status).toBe(200)
    // Its forward thread is waiting for the receiver's answer (3 s at most) when the process dies.
    await waitFor(async () => receiver.requests.length > 0, 2500, 20)
    await server.kill('SIGKILL')
    expect(receiver.requests.map((q) => q.status)).toEqual([0])

    await t.stop()
    t = await startTestApp(names, forward)
    // Within seconds, not BullMQ's default 30 s lock and stall check: the forward's lock lasts 5 s (src/rules/jobs.ts).
    const got = await receiver.waitFor((q) => q.status === 200 && JSON.parse(q.body).alert?.id === alert.id, 20_000)
    expect(JSON.parse(got.body)).toMatchObject({ type: 'fire_confirmed', confirmedBy: 'root' })
    const recorded = await waitFor(async () => {
      const history = await t!.api<{ transitions: { action: string }[] }>('GET', `/api/v1/alerts/${alert.id}`)
      const delivered = history.body.transitions.filter((x) => x.action === 'forwarded_119')
      return delivered.length > 0 ? delivered : null
    })
    expect(recorded).toHaveLength(1)
    expect(receiver.requests.map((q) => q.status)).toEqual([0, 200])
  })
})
