/**
 * A 119 forward that BullMQ fails some other way than its last attempt failing ends like one that did: recorded on
 * the alert, counted as given up and published on the live channel for the operators to phone 119, exactly once.
 * First a forward failed at BullMQ's stall limit (its thread killed mid-attempt, the eleventh time); then one failed
 * by a thread that died before it gave it up, given up by the next instance's forward thread when it starts.
 */
import type { Worker as Thread } from 'node:worker_threads'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUnitAt, dropNames, REDIS_URL, startTestApp, testConfig, waitFor, type TestApp } from './helpers/env.js'
import { Receiver } from './helpers/receiver.js'
import { raiseFire } from './helpers/fire-alert.js'
import { FAILED_SWEEP_MS, Jobs, jobId } from '../src/rules/jobs.js'
import { Forward119 } from '../src/notifications/forward-119.js'
import { openPool } from '../src/store/postgres.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'

let t: TestApp
let env: Record<string, string>
let receiver: Receiver
let redis: Redis
let unitId: string
/** Between the instance's stop and the next one's start (the second test). */
let stopped = false
let seq = 0

beforeAll(async () => {
  receiver = new Receiver()
  const port = await receiver.start()
  env = {
    FORWARD_119_URL: `http://127.0.0.1:${port}/119`,
    FORWARD_119_SECRET: 'forward-119-secret-for-the-tests-0123456789',
    // An unanswered attempt waits this long: the window in which the thread is killed mid-attempt below.
    FORWARD_119_TIMEOUT_MS: '3000'
  }
  t = await startTestApp(undefined, env)
  redis = new Redis(REDIS_URL)
  unitId = await createUnitAt(t.api)
})
afterAll(async () => {
  redis?.disconnect()
  if (stopped) await dropNames(t.names)
  else await t?.dispose()
  await receiver?.stop()
})

const fire = () => raiseFire(t.app, unitId, `1-0${++seq}`)

const bull = () => `${t.names.redisPrefix}bull`
const requestsFor = (alert: Alert) => receiver.requests.filter((q) => JSON.parse(q.body).alert?.id === alert.id)
const finalRecords = async (alert: Alert) =>
  (await t.api<{ transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${alert.id}`)).body.transitions.filter((x) => x.action === 'forward_119_failed' && x.data.final === true)
/** Give-up notices for this alert in the live stream, whoever published them. */
const notices = async (alert: Alert) =>
  (await redis.xrange(`${t.names.redisPrefix}live`, '-', '+'))
    .map(([, fields]) => JSON.parse(fields[1]!) as { change?: string; alert?: { id: string } })
    .filter((m) => m.change === 'forward_119_gave_up' && m.alert?.id === alert.id)

describe('119 forward failed other than by its last attempt', () => {
  it('is given up once when BullMQ fails it at its stall limit: recorded, counted, the consoles told', async () => {
    const before = { ...t.app.forward.stats }
    const alert = await fire()
    receiver.stall = 1
    expect((await t.api('POST', `/api/v1/alerts/${alert.id}/confirm`, {})).status).toBe(200)
    await waitFor(async () => requestsFor(alert).length > 0, 2500, 20)
    // Ten stalls behind it already, counted where BullMQ's stall check counts them; this kill is the eleventh.
    await redis.hset(`${bull()}:forward119:${jobId('fwd119', alert.id)}`, 'stc', 10)
    await (t.app.forward as unknown as { current: Thread | null }).current!.terminate()

    // The restarted thread's stall check finds it once the dead thread's lock expired (5 s); BullMQ fails it.
    const [record] = await waitFor(async () => {
      const r = await finalRecords(alert)
      return r.length > 0 ? r : null
    }, 20_000)
    expect(record).toMatchObject({ actor: 'system', data: { status: null, error: 'job stalled more than allowable limit', final: true } })
    expect(record!.comment).toContain('call 119')
    await waitFor(async () => (await notices(alert)).length === 1)
    await waitFor(async () => t.app.forward.stats.gaveUp === before.gaveUp + 1)
    // Not sent again once failed: the one unanswered attempt is all the receiver saw.
    expect(requestsFor(alert).map((q) => q.status)).toEqual([0])

    // Once: the failed event, two sweeps of the failed set and the give-up's own job id saw to it.
    await new Promise((r) => setTimeout(r, 2 * FAILED_SWEEP_MS + 500))
    expect(await notices(alert)).toHaveLength(1)
    expect(await finalRecords(alert)).toHaveLength(1)
    expect(t.app.forward.stats.gaveUp).toBe(before.gaveUp + 1)
    expect(await redis.zcard(`${bull()}:forward119:failed`)).toBe(0)
    const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text()
    expect(text).toContain(`firewatch_forward_119_total{outcome="gave_up"} ${before.gaveUp + 1}`)
  })

  it('is given up by the next forward thread when the one that failed it died before it could', async () => {
    const lost = await fire()
    // The instance stops; the forward of its fire alarm is enqueued by the producer its confirmation runs.
    await t.stop()
    stopped = true
    const config = testConfig(t.names, env)
    const log = pino({ level: 'silent' })
    const jobs = new Jobs({ redisUrl: REDIS_URL, prefix: bull(), log, sweepEveryMs: 60_000 })
    const pool = openPool(config.databaseUrl, log, { max: 1, connectTimeoutMs: config.databaseConnectTimeoutMs })
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
    // A worker that fails the forward and whose 'failed' event nobody hears: a thread that died right after failing it.
    const crashed = new Worker('forward119', () => Promise.reject(new UnrecoverableError('handler crashed')), { connection, prefix: bull() })
    try {
      await jobs.start()
      const failed = new Promise((resolve) => crashed.once('failed', resolve))
      await new Forward119({ pool, jobs, target: config.forward119 }).onAlertChange(lost, 'confirmed')
      await failed
    } finally {
      await crashed.close()
      connection.disconnect()
      await jobs.close()
      await pool.end()
    }
    expect(await redis.zcard(`${bull()}:forward119:failed`)).toBe(1)

    // The next instance's forward thread finds it in the failed set when it starts.
    t = await startTestApp(t.names, env)
    stopped = false
    const [record] = await waitFor(async () => {
      const r = await finalRecords(lost)
      return r.length > 0 ? r : null
    })
    expect(record).toMatchObject({ data: { error: 'handler crashed', final: true } })
    await waitFor(async () => (await notices(lost)).length === 1)
    await waitFor(async () => t.app.forward.stats.gaveUp === 1)
    await new Promise((r) => setTimeout(r, FAILED_SWEEP_MS + 500))
    expect(await notices(lost)).toHaveLength(1)
    expect(await redis.zcard(`${bull()}:forward119:failed`)).toBe(0)
    expect(requestsFor(lost)).toHaveLength(0)
  })
})
