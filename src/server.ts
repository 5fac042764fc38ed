/** The process: configuration, logger, start, graceful shutdown. Everything else is in app.ts. */
import { loadConfig } from './config/index.js'
import { createLogger } from './logger.js'
import { buildApp } from './app.js'
import { FirewatchError } from './errors.js'

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof FirewatchError) {
      console.error(`firewatch: ${err.message}`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  const app = await buildApp(config, log)
  const ports = await app.start()
  log.info({ ...ports, influxDb: config.influxDb }, 'firewatch started')

  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      log.error('shutdown took longer than 15 s; exiting')
      process.exit(1)
    }, 15_000)
    force.unref()
    app.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      }
    )
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
}

main().catch((err) => {
  console.error('firewatch: failed to start:', err instanceof Error ? err.message : err)
  process.exit(1)
})
