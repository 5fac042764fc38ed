/**
 * Firewatch as src/server.ts runs it (configuration from the environment, buildApp, start), plus the benchmark's
 * IPC control channel. Run by bench/index.ts as a child process with an isolated database, InfluxDB database and
 * Redis prefix.
 */
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { buildApp } from '../../src/app.js'
import { serveControl } from './control.js'

const config = loadConfig()
const log = createLogger(config.logLevel)
const app = await buildApp(config, log)
const ports = await app.start()

serveControl(
  { mqttPort: ports.mqttPort, httpPort: ports.httpPort },
  {
    stop: () => app.stop(),
    stats: () => ({
      accepted: app.ingestLog.appended,
      connectedClients: app.broker?.aedes.connectedClients ?? 0,
      writer: app.writer.stats,
      rejected: Object.fromEntries(Object.entries(app.rejections.counts).filter(([, n]) => n > 0))
    })
  }
)
