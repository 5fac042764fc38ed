/**
 * The 119 forward survives the process that confirmed the alarm: a server process answers the operator's confirm and
 * is SIGKILLed right after the reply; no process has forwarded it yet (none runs the BullMQ workers), and the instance
 * that starts next forwards it, once.
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
  it('is forwarded by the next instance when the confirming process is killed right after its reply', async () => {
    // The registry and the alarm, from an instance without workers.
    t = await startTestApp(names, forward)
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
    const server = await startServerProcess(testEnv(names, { ...forward, HTTP_PORT: String(httpPort), LOG_LEVEL: 'info' }))
    const r = await apiAt(`http://127.0.0.1:${httpPort}`)('POST', `/api/v1/alerts/${alert.id}/confirm`, { comment: 'confirmed by phone' })
    await server.kill('SIGKILL')
    expect(r.status).toBe(200)
    expect(receiver.requests).toHaveLength(0)

    await t.stop()
    t = await startTestApp(names, { ...forward, RULE_ENGINE: 'true' })
    const got = await receiver.waitFor((q) => JSON.parse(q.body).alert?.id === alert.id, 20_000)
    expect(JSON.parse(got.body)).toMatchObject({ type: 'fire_confirmed', confirmedBy: 'root' })
    const recorded = await waitFor(async () => {
      const history = await t!.api<{ transitions: { action: string }[] }>('GET', `/api/v1/alerts/${alert.id}`)
      const delivered = history.body.transitions.filter((x) => x.action === 'forwarded_119')
      return delivered.length > 0 ? delivered : null
    })
    expect(recorded).toHaveLength(1)
    expect(receiver.requests).toHaveLength(1)
  })
})
