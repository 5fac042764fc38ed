/** The telemetry writer's thread: starts against real Redis, stops once however often it is asked. */
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { WriterThread } from '../src/store/writer-thread.js'
import { INFLUX_URL, REDIS_URL, dropRedisPrefix, uniqueNames } from './helpers/env.js'

const names = uniqueNames('wt')
afterEach(() => dropRedisPrefix(names.redisPrefix))

const thread = () =>
  new WriterThread(
    {
      redisUrl: REDIS_URL,
      stream: `${names.redisPrefix}ingest`,
      group: 'telemetry-writer',
      consumerName: 'test',
      deadLetterStream: `${names.redisPrefix}ingest:dead`,
      influxUrl: INFLUX_URL,
      influxDb: names.influxDb,
      influxToken: null,
      logLevel: 'silent'
    },
    pino({ level: 'silent' })
  )

describe('WriterThread', () => {
  it('reports alive once started, and stops once when asked twice at the same time', async () => {
    const w = thread()
    expect(w.alive).toBe(false)
    await w.start()
    expect(w.alive).toBe(true)
    const started = Date.now()
    await Promise.all([w.stop(), w.stop()])
    expect(w.alive).toBe(false)
    expect(Date.now() - started).toBeLessThan(5000)
    await w.stop() // and again, after the thread is gone
  })
})
