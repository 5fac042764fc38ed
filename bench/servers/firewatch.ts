/**
 * Firewatch as src/server.ts runs it (configuration from the environment, buildApp, start), plus the benchmark's
 * IPC control channel. Run by bench/index.ts as a child process with an isolated database, InfluxDB database and
 * Redis prefix.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { buildApp } from '../../src/app.js'
import { serveControl } from './control.js'

const config = loadConfig()
const log = createLogger(config.logLevel)
const app = await buildApp(config, log)
const ports = await app.start()
// How late the main thread's event loop runs (every callback: MQTT, the append, the rule engine, alert listeners),
// since the previous 'stats' request.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
const ms = (ns: number) => Math.round(ns / 1e4) / 100

serveControl(
  { mqttPort: ports.mqttPort, httpPort: ports.httpPort },
  {
    stop: () => app.stop(),
    stats: () => ({
      accepted: app.ingestLog.appended,
      appendCalls: app.ingestLog.calls,
      connectedClients: app.broker?.aedes.connectedClients ?? 0,
      writer: app.writer.stats,
      engine: app.engine.stats,
      livePublished: app.live.published,
      rejected: Object.fromEntries(Object.entries(app.rejections.counts).filter(([, n]) => n > 0)),
      eventLoopDelayMs: (() => {
        const d = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) }
        loopDelay.reset()
        return d
      })()
    })
  }
)
