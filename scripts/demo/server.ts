/** The Firewatch server (src/server.ts) as the demo's child process: its environment, its start and its /readyz. */
import type { ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { assertRunning, childEnv, startChild } from './child-processes.js'
import { DATABASE_URL, DEMO } from './clean-state.js'
import { DemoError, Stopped } from './errors.js'
import type { Options } from './options.js'
import { step } from './output.js'
import type { DemoPorts } from './ports.js'

interface Ready {
  ready: boolean
  checks: Record<string, string>
  status: Record<string, unknown>
}

export interface DemoServer {
  child: ChildProcess
  logFile: string
  /** The address to reach it at (the bind address, or loopback when it binds every address). */
  connectHost: string
  base: string
}

/** Start the server on the demo's databases and `ports` (its GB/T 26875.3 gateway on), logging to `logFile`; see waitReady. */
export function startServer(opts: Options, ports: DemoPorts, token: string, logFile: string): DemoServer {
  const child = startChild(
    'src/server.ts',
    [],
    logFile,
    childEnv({
      MQTT_PORT: String(ports.mqtt),
      HTTP_PORT: String(ports.http),
      GB26875_PORT: String(ports.gb26875),
      HOST: opts.host,
      REDIS_URL: DEMO.redisUrl,
      REDIS_PREFIX: DEMO.redisPrefix,
      DATABASE_URL,
      INFLUX_URL: DEMO.influxUrl,
      INFLUX_DB: DEMO.influxDb,
      INFLUX_TOKEN: '',
      FIREWATCH_ADMIN_TOKEN: token,
      LOG_LEVEL: opts.logLevel,
      INGEST_CONSUMER: DEMO.consumer
    })
  )
  step('server', `starting (pid ${child.pid}, LOG_LEVEL=${opts.logLevel}, log ${logFile})`)
  const connectHost = opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host === '::' ? '[::1]' : opts.host.includes(':') ? `[${opts.host}]` : opts.host
  return { child, logFile, connectHost, base: `http://${connectHost}:${ports.http}` }
}

/** The server's /readyz answer, or null when it gives none within 3 s. */
export function readStatus(base: string): Promise<Ready | null> {
  return fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3000) })
    .then((r) => r.json() as Promise<Ready>)
    .catch(() => null)
}

/** Throws when the server has exited (`when`: during start-up). */
export function assertServerRunning(server: DemoServer, when = ''): void {
  assertRunning(server.child, 'the server', { file: server.logFile, title: 'server log' }, when)
}

/** Wait until /readyz says ready; throws, naming the checks not yet ok, after `timeoutMs`. */
export async function waitReady(server: DemoServer, stop: AbortSignal, timeoutMs: number): Promise<Ready> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  while (Date.now() < deadline) {
    if (stop.aborted) throw new Stopped()
    assertServerRunning(server, ' during start-up')
    try {
      const res = await fetch(`${server.base}/readyz`, { signal: AbortSignal.timeout(3000) })
      const body = (await res.json()) as Ready
      if (res.ok && body.ready) return body
      last = `not ready: ${Object.entries(body.checks ?? {})
        .filter(([, v]) => v !== 'ok')
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(300)
  }
  throw new DemoError(`the server did not become ready within ${timeoutMs / 1000} s (${last})`, { file: server.logFile, title: 'server log' })
}
