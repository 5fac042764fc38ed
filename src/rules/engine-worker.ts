/**
 * The rule engine's thread: reading the ingest log, evaluating rules, raising alerts and running the BullMQ jobs (all
 * but the 119 forward's, which has a thread of its own: src/notifications/forward-thread.ts) happen here, on an event
 * loop of their own, so neither the broker's load delays a fire alarm's alert nor the engine's work delays a PUBACK.
 * It answers the main thread's requests (a sweep, test modes) and reports counters.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import { createLogger } from '../logger.js'
import { connectPostgres } from '../store/postgres.js'
import { InfluxStore } from '../store/influx.js'
import { loadProfiles } from '../ingest/profiles.js'
import { loadRules } from './rule-set.js'
import { buildRulesRuntime } from './runtime.js'
import type { EngineRequest, EngineWorkerData, EngineWorkerMessage } from './engine-thread.js'
import { nameThisThread } from '../thread-name.js'

nameThisThread('fw-engine')

const data = workerData as EngineWorkerData
const config = data.config as Readonly<Config>
const port = parentPort!
const log = createLogger(config.logLevel).child({ thread: 'rules' })
const post = (m: EngineWorkerMessage) => port.postMessage(m)

async function main(): Promise<void> {
  const profiles = loadProfiles(config.devicesDir)
  const rules = loadRules(config.rulesDir, profiles)
  const pool = await connectPostgres(config.databaseUrl, log, config.databaseConnectTimeoutMs)
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 })
  redis.on('error', (err) => log.warn({ err }, 'Redis connection error'))
  const store = new InfluxStore({ url: config.influxUrl, database: config.influxDb, token: config.influxToken })
  const runtime = buildRulesRuntime({ config, log, pool, redis, store, rules, profiles, ingestStream: data.ingestStream, runEngine: true })
  const engine = runtime.engine!

  const stats = () => ({ ...engine.stats, liveMessages: runtime.live.published, notifications: runtime.notifier.sent, webhooks: { ...runtime.notifications.delivery.stats }, jobs: { ...runtime.jobs.revivals } })
  const report = setInterval(() => post({ type: 'stats', stats: stats() }), 200)

  port.on('message', (m: EngineRequest) => {
    const answer = (p: Promise<unknown>) =>
      p.then(
        () => post({ type: 'reply', id: m.id, ok: true }),
        (err: Error) => post({ type: 'reply', id: m.id, ok: false, message: err.message })
      )
    if (m.op === 'sweep') void answer(engine.sweep(m.now))
    else if (m.op === 'refreshTestModes') void answer(engine.refreshTestModes())
    else if (m.op === 'block') {
      // Holds this thread and nothing else, as evaluating an alarm storm would (without burning the CPU meanwhile).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms)
      post({ type: 'reply', id: m.id, ok: true })
    } else if (m.op === 'stop') {
      clearInterval(report)
      void runtime
        .stop()
        .then(() => Promise.allSettled([redis.quit(), pool.end()]))
        .then(() => {
          post({ type: 'stats', stats: stats() })
          post({ type: 'reply', id: m.id, ok: true })
          port.close()
        })
    }
  })

  await runtime.start()
  post({ type: 'ready' })
}

main().catch((err: Error) => {
  log.error({ err }, 'rule engine thread failed to start')
  post({ type: 'failed', message: err.message })
  // Connections opened before the failure would keep the thread alive.
  setTimeout(() => process.exit(1), 100)
})
