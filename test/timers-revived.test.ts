/**
 * A timer that BullMQ fails around its handler is run again, not lost: an escalation job failed at the timers queue's
 * stall limit (its thread died during it once more) is kept in the failed set, revived by the sweep of the failed set,
 * and the alert escalates exactly once. A job that fails each time it is revived is given up after REVIVALS: an error
 * log, a counter, and the failed set emptied.
 */
import { UnrecoverableError, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUnitAt, dropNames, REDIS_URL, startTestApp, waitFor, type TestApp } from './helpers/env.js'
import { raiseFire } from './helpers/fire-alert.js'
import { FAILED_SWEEP_MS, Jobs, jobId, REVIVALS, REVIVED_STALL_LIMIT } from '../src/rules/jobs.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'

let t: TestApp
let env: Record<string, string>
let redis: Redis
let unitId: string
/** Between the instance's stop and the next one's start. */
let stopped = false

beforeAll(async () => {
  env = { RULE_ENGINE: 'true', ESCALATE_AFTER_MS: '1500', ESCALATE_REMIND_MS: '3600000' }
  t = await startTestApp(undefined, env)
  redis = new Redis(REDIS_URL)
  unitId = await createUnitAt(t.api)
})
afterAll(async () => {
  redis?.disconnect()
  if (stopped) await dropNames(t.names)
  else await t?.dispose()
})

const bull = () => `${t.names.redisPrefix}bull`
const escalations = async (alert: Alert) =>
  (await t.api<{ transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${alert.id}`)).body.transitions.filter((x) => x.action === 'escalated')
const failedJobs = async () => {
  const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text()
  return { revived: Number(/firewatch_failed_jobs_total\{outcome="revived"\} (\d+)/.exec(text)?.[1]), givenUp: Number(/firewatch_failed_jobs_total\{outcome="given_up"\} (\d+)/.exec(text)?.[1]) }
}

describe('a timer failed around its handler', () => {
  it('is revived by the sweep when BullMQ fails it at its stall limit, and escalates once', async () => {
    const alert = await raiseFire(t.app, unitId, '1-01')
    const id = jobId('esc', alert.id, 1)
    // The instance stops before the escalation is due; a worker then takes the job up and dies during it.
    await t.stop()
    stopped = true
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
    const dying = new Worker('timers', () => new Promise<never>(() => undefined), { connection, prefix: bull() })
    try {
      await waitFor(async () => (await redis.lpos(`${bull()}:timers:active`, id)) !== null, 10_000)
    } finally {
      await dying.close(true)
      connection.disconnect()
    }
    // Stalled up to the limit already; what the lock running out and a stall check since would leave, without
    // waiting for them: no lock, the job marked by the last check, the next check due. The next worker checks at start.
    await redis.hset(`${bull()}:timers:${id}`, 'stc', REVIVED_STALL_LIMIT)
    await redis.del(`${bull()}:timers:${id}:lock`, `${bull()}:timers:stalled-check`)
    await redis.sadd(`${bull()}:timers:stalled`, id)
    expect(await escalations(alert).catch(() => [])).toHaveLength(0)

    t = await startTestApp(t.names, env)
    stopped = false
    const [step] = await waitFor(async () => {
      const e = await escalations(alert)
      return e.length > 0 ? e : null
    }, 20_000)
    expect(step).toMatchObject({ actor: 'system' })
    await waitFor(async () => (await failedJobs()).revived >= 1)

    // Once: further sweeps find nothing failed, and the job's id keeps it from running twice.
    await new Promise((r) => setTimeout(r, 2 * FAILED_SWEEP_MS + 500))
    expect(await escalations(alert)).toHaveLength(1)
    expect(await redis.zcard(`${bull()}:timers:failed`)).toBe(0)
    expect((await failedJobs()).givenUp).toBe(0)
  })

  it('is given up, logged and counted, when it fails again after every revival', async () => {
    const errors: Record<string, unknown>[] = []
    const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line) as Record<string, unknown>) })
    const jobs = new Jobs({ redisUrl: REDIS_URL, prefix: `${bull()}-given-up`, log, sweepEveryMs: 60_000 })
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
    // A timer that always fails around its handler's retries.
    const broken = new Worker('timers', async (job) => {
      if (job.name === 'broken') throw new UnrecoverableError('always broken')
    }, { connection, prefix: `${bull()}-given-up` })
    try {
      await jobs.start()
      await jobs.schedule('timers', 'broken', 'broken-1', 0, {})
      // This Jobs works no queue (it would sweep every FAILED_SWEEP_MS): its sweep is run here, as often as it takes.
      await waitFor(async () => (await jobs.reviveFailed(), jobs.revivals.givenUp === 1), 10_000, 50)
      expect(jobs.revivals.revived).toBe(REVIVALS)
      expect(await redis.zcard(`${bull()}-given-up:timers:failed`)).toBe(0)
      expect(await redis.exists(`${bull()}-given-up:timers:broken-1`)).toBe(0)
      expect(errors).toEqual([expect.objectContaining({ queue: 'timers', job: 'broken', jobId: 'broken-1', reason: 'always broken', revivals: REVIVALS, msg: expect.stringContaining('job given up') })])
    } finally {
      await broken.close()
      connection.disconnect()
      await jobs.close()
      const keys = await redis.keys(`${bull()}-given-up:*`)
      if (keys.length) await redis.del(...keys)
    }
  })
})
