/**
 * The 119 forward's thread: the BullMQ worker of the `forward119` queue, its HTTP attempts, their records on the alert
 * and the give-up notice, on an event loop nothing else uses, so neither the broker's load nor a rule engine busy
 * with an alarm storm delays a confirmed fire alarm (GB 50440: 3 s). It reports its counters to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import { createLogger } from '../logger.js'
import { openPool } from '../store/postgres.js'
import { LivePublisher } from '../alerts/live.js'
import { FAILED_SWEEP_MS, Jobs, QUEUES } from '../rules/jobs.js'
import { Forward119Delivery, forwardPoolOptions } from './forward-119-delivery.js'
import type { ForwardThreadStats, ForwardWorkerData, ForwardWorkerMessage } from './forward-thread.js'
import { nameThisThread } from '../thread-name.js'

nameThisThread('fw-forward')

const config = (workerData as ForwardWorkerData).config as Readonly<Config>
const port = parentPort!
const log = createLogger(config.logLevel).child({ thread: 'forward119' })
const post = (m: ForwardWorkerMessage) => port.postMessage(m)

// Not checked at start: the forward is sent from the job's own data, so the thread must run while PostgreSQL is away.
const pool = openPool(config.databaseUrl, log, forwardPoolOptions(config))
// The give-up notice goes out on the live channel (the broker's thread copies it to MQTT).
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 })
redis.on('error', (err) => log.warn({ err }, 'Redis connection error'))
const live = new LivePublisher(redis, config.redisPrefix, () => null, log.child({ component: 'live' }))
const jobs = new Jobs({ redisUrl: config.redisUrl, prefix: `${config.redisPrefix}bull`, log: log.child({ component: 'jobs' }), sweepEveryMs: config.sweepIntervalMs })
const delivery = new Forward119Delivery({ pool, jobs, log: log.child({ component: 'forward119' }), target: config.forward119!, live })

const stats = (): ForwardThreadStats => ({ ...delivery.stats, liveMessages: live.published })
const report = setInterval(() => post({ type: 'stats', stats: stats() }), 200)
// Forwards that failed while their thread died before giving them up (this one's predecessor, another instance).
const sweepFailed = () => void delivery.sweepFailed().catch((err: unknown) => log.warn({ err }, 'failed 119 forwards not read'))
let sweep: NodeJS.Timeout | undefined

port.on('message', (m: { type: 'stop' }) => {
  if (m.type !== 'stop') return
  clearInterval(report)
  clearInterval(sweep)
  // Closing the BullMQ worker waits for the attempts in flight.
  void jobs
    .close()
    .then(() => Promise.allSettled([redis.quit(), pool.end()]))
    .then(() => {
      post({ type: 'stats', stats: stats() })
      post({ type: 'stopped' })
      port.close()
    })
})

jobs.start([QUEUES.forward119]).then(
  () => {
    post({ type: 'ready' })
    sweepFailed()
    sweep = setInterval(sweepFailed, FAILED_SWEEP_MS)
  },
  (err: Error) => {
    log.error({ err }, '119 forward thread failed to start')
    post({ type: 'failed', message: err.message })
    // Connections opened before the failure would keep the thread alive.
    setTimeout(() => process.exit(1), 100)
  }
)
