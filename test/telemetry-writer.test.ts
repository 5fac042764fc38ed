/**
 * The telemetry writer against a Redis at its memory limit (a private redis-server with maxmemory and noeviction)
 * and against an InfluxDB that is not there.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { LogConsumer } from '../src/ingest/log-consumer.js'
import { InfluxStore } from '../src/store/influx.js'
import { TelemetryWriter } from '../src/store/telemetry-writer.js'
import { INFLUX_URL, REDIS_URL, dropRedisPrefix, uniqueNames, waitFor } from './helpers/env.js'
import { freePorts } from './helpers/processes.js'
import { countReadings } from './helpers/stored-readings.js'

const silent = pino({ level: 'silent' })
const children: ChildProcess[] = []
const connections: Redis[] = []
afterAll(async () => {
  for (const c of connections) c.disconnect()
  for (const c of children) c.kill('SIGKILL')
})

const entry = (deviceId: string, seq: number) =>
  JSON.stringify({ deviceId, unitId: 'u1', kind: 'sprinkler_pressure', rx: Date.now(), type: 'telemetry', items: [{ ts: Date.now() - 60_000 + seq, seq, values: { pressure_mpa: 0.3 } }] })

describe('TelemetryWriter', () => {
  it('drains a full Redis even when an entry it cannot store sits among the good ones', async () => {
    const [port] = (await freePorts(1)) as [number]
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' })
    children.push(server)
    const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
    const consumerRedis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null })
    connections.push(redis, consumerRedis)
    for (const c of [redis, consumerRedis]) c.on('error', () => undefined) // until the server listens
    await waitFor(async () => (await redis.ping()) === 'PONG')

    const names = uniqueNames('full')
    const stream = 'ingest'
    const consumer = new LogConsumer(consumerRedis, { stream, group: 'telemetry-writer', consumer: 'test' })
    // The group exists from the server's first start, long before an outage fills Redis.
    await consumer.ensureGroup()
    await redis.xadd(stream, '*', 'm', '{"not json')
    // Fill Redis to its limit with good entries.
    let good = 0
    for (;;) {
      try {
        await redis.xadd(stream, '*', 'm', entry('full-dev', ++good))
      } catch (err) {
        expect(String(err)).toMatch(/OOM/)
        good--
        break
      }
    }
    expect(good).toBeGreaterThan(1000)

    const store = new InfluxStore({ url: INFLUX_URL, database: names.influxDb, token: null })
    const writer = new TelemetryWriter(consumer, store, redis, silent, { deadLetterStream: 'ingest:dead' })
    try {
      await writer.start()
      await waitFor(async () => (await countReadings(store, 'full-dev')) === good, 30_000, 250)
      // The writer acks a batch after InfluxDB accepted it, so the last batch may be stored and not yet acked.
      await waitFor(async () => ((await redis.xpending(stream, 'telemetry-writer')) as [number])[0] === 0, 10_000, 50)
      // The dead-letter stream was refused (Redis is full): the entry went to the log instead, and was acked.
      expect(writer.stats.deadLettered).toBe(0)
    } finally {
      await writer.stop()
      await store.dropDatabase()
    }
  })

  it('stops within a second while it is backing off from an InfluxDB that is not there', async () => {
    const [deadPort] = (await freePorts(1)) as [number]
    const names = uniqueNames('nodb')
    const redis = new Redis(REDIS_URL)
    const consumerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null })
    connections.push(redis, consumerRedis)
    const stream = `${names.redisPrefix}ingest`
    await redis.xadd(stream, '*', 'm', entry('nodb-dev', 1))
    const store = new InfluxStore({ url: `http://127.0.0.1:${deadPort}`, database: names.influxDb, token: null })
    const consumer = new LogConsumer(consumerRedis, { stream, group: 'telemetry-writer', consumer: 'test' })
    const writer = new TelemetryWriter(consumer, store, redis, silent, { deadLetterStream: `${stream}:dead`, maxBackoffMs: 5000 })
    try {
      await writer.start()
      await waitFor(async () => writer.stats.failures >= 5, 20_000)
      const started = Date.now()
      await writer.stop()
      expect(Date.now() - started).toBeLessThan(1000)
    } finally {
      await dropRedisPrefix(names.redisPrefix)
    }
  })
})
