/**
 * A webhook delivery that BullMQ fails some other way than its last attempt failing ends like one that did: one dead
 * letter, with BullMQ's reason, however many observers saw the failure. First a delivery failed at the webhooks
 * queue's stall limit (the rule engine's thread killed mid-attempt once more); then one failed by a worker that died
 * before it dead-lettered it, picked up by the next instance's engine thread when it starts.
 */
import type { Worker as Thread } from 'node:worker_threads'
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUnitAt, dropNames, REDIS_URL, startTestApp, testConfig, waitFor, type TestApp } from './helpers/env.js'
import { Receiver } from './helpers/receiver.js'
import { raiseFire } from './helpers/fire-alert.js'
import { FAILED_SWEEP_MS, Jobs, WEBHOOK_STALL_LIMIT } from '../src/rules/jobs.js'
import { WebhookDelivery } from '../src/notifications/webhook-delivery.js'
import { WebhookRepository } from '../src/notifications/webhook-repository.js'
import { openPool } from '../src/store/postgres.js'
import type { DeadLetter } from '../schemas/webhooks.js'

let t: TestApp
let env: Record<string, string>
let receiver: Receiver
let url: string
let redis: Redis
let unitId: string
/** Between the instance's stop and the next one's start (the second test). */
let stopped = false
let seq = 0

beforeAll(async () => {
  receiver = new Receiver()
  url = `http://127.0.0.1:${await receiver.start()}/hooks`
  env = {
    RULE_ENGINE: 'true',
    NOTIFY_INTERVAL_MS: '100',
    WEBHOOK_ATTEMPTS: '3',
    WEBHOOK_BACKOFF_MS: '100',
    // An unanswered attempt waits this long: the window in which the engine's thread is killed mid-attempt below.
    WEBHOOK_TIMEOUT_MS: '10000'
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

const bull = () => `${t.names.redisPrefix}bull`
const webhook = async (name: string) => {
  const r = await t.api<{ id: string }>('POST', '/api/v1/webhooks', { name, url, jurisdictionId: null, classes: ['fire'] })
  expect(r.status).toBe(201)
  return r.body.id
}
const fire = () => raiseFire(t.app, unitId, `1-0${++seq}`)
const deadLetters = async (webhookId: string) => (await t.api<{ items: DeadLetter[] }>('GET', `/api/v1/webhooks/dead-letters?webhookId=${webhookId}`)).body.items
const requestsFor = (webhookId: string) => receiver.requests.filter((q) => JSON.parse(q.body).webhookId === webhookId)
const failedSet = () => redis.zcard(`${bull()}:webhooks:failed`)
const deadLettered = async () => {
  const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text()
  return Number(/firewatch_webhook_deliveries_total\{outcome="dead_lettered"\} (\d+)/.exec(text)?.[1])
}

describe('webhook delivery failed other than by its last attempt', () => {
  it('is dead-lettered once when BullMQ fails it at its stall limit', async () => {
    const webhookId = await webhook('stalls')
    receiver.stall = 1
    await fire()
    await waitFor(async () => requestsFor(webhookId).length > 0, 5000, 20)
    const [id] = await redis.lrange(`${bull()}:webhooks:active`, 0, -1)
    expect(id).toBeDefined()
    // Stalled up to the limit already, counted where BullMQ's stall check counts them; this kill is one more.
    await redis.hset(`${bull()}:webhooks:${id}`, 'stc', WEBHOOK_STALL_LIMIT)
    await (t.app.engine as unknown as { current: Thread | null }).current!.terminate()
    // What the 30 s lock running out and a stall check since would leave, without waiting for them: no lock, the job
    // marked by the last check, and the next check due. The restarted thread's worker checks when it starts.
    await redis.del(`${bull()}:webhooks:${id}:lock`, `${bull()}:webhooks:stalled-check`)
    await redis.sadd(`${bull()}:webhooks:stalled`, id!)

    const [dead] = await waitFor(async () => {
      const d = await deadLetters(webhookId)
      return d.length > 0 ? d : null
    }, 20_000)
    expect(dead).toMatchObject({ webhookId, attempts: 1, lastStatus: null, lastError: 'job stalled more than allowable limit' })
    expect(JSON.parse(dead!.body)).toMatchObject({ type: 'notification', webhookId, deliveryId: dead!.deliveryId })
    // Not sent again once failed: the one unanswered attempt is all the receiver saw.
    expect(requestsFor(webhookId).map((q) => q.status)).toEqual([0])

    // Once: the failed event, two sweeps of the failed set and the dead letter's own job id saw to it (a second
    // record of the same delivery would add its attempts to the row's).
    await waitFor(async () => (await deadLettered()) === 1)
    await new Promise((r) => setTimeout(r, 2 * FAILED_SWEEP_MS + 500))
    expect(await deadLetters(webhookId)).toEqual([dead])
    expect(await deadLettered()).toBe(1)
    expect(await failedSet()).toBe(0)
  })

  it('is dead-lettered by the next engine thread when the worker that failed it died before it could', async () => {
    const webhookId = await webhook('crashes')
    await t.stop()
    stopped = true
    const config = testConfig(t.names, env)
    const log = pino({ level: 'silent' })
    const jobs = new Jobs({ redisUrl: REDIS_URL, prefix: bull(), log, sweepEveryMs: 60_000 })
    const pool = openPool(config.databaseUrl, log, { max: 1, connectTimeoutMs: config.databaseConnectTimeoutMs })
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
    // A worker that fails the delivery and whose 'failed' event nobody hears: a thread that died right after failing it.
    const crashed = new Worker('webhooks', () => Promise.reject(new UnrecoverableError('handler crashed')), { connection, prefix: bull() })
    const body = JSON.stringify({ type: 'notification', deliveryId: 'lost-1', webhookId, unitId, items: [], byClass: {}, sentAt: new Date().toISOString() })
    try {
      await jobs.start()
      const failed = new Promise((resolve) => crashed.once('failed', resolve))
      await new WebhookDelivery({ jobs, repo: new WebhookRepository(pool), log, settings: config.webhooks }).enqueue(webhookId, 'lost-1', body)
      await failed
    } finally {
      await crashed.close()
      connection.disconnect()
      await jobs.close()
      await pool.end()
    }
    expect(await failedSet()).toBe(1)

    // The next instance's engine thread finds it in the failed set when it starts.
    t = await startTestApp(t.names, env)
    stopped = false
    const [dead] = await waitFor(async () => {
      const d = await deadLetters(webhookId)
      return d.length > 0 ? d : null
    })
    expect(dead).toMatchObject({ webhookId, deliveryId: 'lost-1', body, attempts: 1, lastStatus: null, lastError: 'handler crashed' })
    await new Promise((r) => setTimeout(r, FAILED_SWEEP_MS + 500))
    expect(await deadLetters(webhookId)).toEqual([dead])
    expect(await deadLettered()).toBe(1)
    expect(await failedSet()).toBe(0)
    expect(requestsFor(webhookId)).toHaveLength(0)
  })
})
