/**
 * The telemetry writer's thread. JSON parsing of log batches, line protocol and InfluxDB requests run here, off the
 * broker's event loop, so storage work never delays a PUBACK. It reports its counters to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Redis } from 'ioredis'
import { createLogger } from '../logger.js'
import { LogConsumer } from '../ingest/log-consumer.js'
import { InfluxStore } from './influx.js'
import { TelemetryWriter } from './telemetry-writer.js'
import type { WriterWorkerData, WriterWorkerMessage } from './writer-thread.js'
import { nameThisThread } from '../thread-name.js'

nameThisThread('fw-writer')

const data = workerData as WriterWorkerData
const port = parentPort!
const log = createLogger(data.logLevel).child({ component: 'telemetry-writer' })
const post = (m: WriterWorkerMessage) => port.postMessage(m)

// Dead letters are plain writes; the consumer's blocking reads need a connection of their own.
const redis = new Redis(data.redisUrl, { maxRetriesPerRequest: 2 })
const consumerRedis = new Redis(data.redisUrl, { maxRetriesPerRequest: null })
redis.on('error', (err) => log.warn({ err }, 'Redis connection error'))
consumerRedis.on('error', (err) => log.warn({ err }, 'Redis connection error (consumer)'))

const store = new InfluxStore({ url: data.influxUrl, database: data.influxDb, token: data.influxToken })
const consumer = new LogConsumer(consumerRedis, { stream: data.stream, group: data.group, consumer: data.consumerName })
const writer = new TelemetryWriter(consumer, store, redis, log, { deadLetterStream: data.deadLetterStream })

const report = setInterval(() => post({ type: 'stats', stats: writer.stats }), 200)

port.on('message', (m: { type: 'stop' }) => {
  if (m.type !== 'stop') return
  clearInterval(report)
  void writer
    .stop()
    .then(() => Promise.allSettled([redis.quit(), consumerRedis.quit()]))
    .then(() => {
      post({ type: 'stats', stats: writer.stats })
      post({ type: 'stopped' })
      port.close()
    })
})

writer.start().then(
  () => post({ type: 'ready' }),
  (err: Error) => {
    post({ type: 'failed', message: err.message })
    clearInterval(report)
    redis.disconnect()
    consumerRedis.disconnect()
    port.close()
  }
)
