/**
 * Real processes for the durability tests: a Firewatch server run as a child process (so it can be SIGKILLed and
 * restarted on the same ports), a private InfluxDB (so a test can stop it without touching the shared one), and an
 * admin API client that works against a base URL. Every child started here is tracked; `killAll()` ends them.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from './env.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const children = new Set<ChildProcess>()

/**
 * A TCP port nobody listens on right now, below the kernel's ephemeral range (Linux: 32768-60999), so that while
 * the process owning it is down no `listen(0)` elsewhere and no outgoing connection (not even a reconnecting
 * client's own source port) can take it, and a restarted process gets it again.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (await canListen(port)) return port
  }
  throw new Error('no free TCP port found in 20000-31999')
}

async function canListen(port: number): Promise<boolean> {
  const server = net.createServer()
  try {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    return true
  } catch {
    return false
  } finally {
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  }
}

/** Distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

export interface ChildHandle {
  readonly child: ChildProcess
  /** Everything the process wrote so far (stdout and stderr), for failure messages. */
  output(): string
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<number | string | null>
  /** Send a signal and wait until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>
}

function track(child: ChildProcess, keepOutput = 200_000): ChildHandle {
  children.add(child)
  let out = ''
  const collect = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    if (out.length > keepOutput) out = out.slice(-keepOutput)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child)
      resolve(code ?? signal)
    })
  })
  return {
    child,
    output: () => out,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
  }
}

/** SIGKILL every child process started through this module that is still running. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
    })
  )
}

/**
 * Run `src/server.ts` as its own process with this environment (from `testEnv`), and wait for its
 * `firewatch started` log line. The environment should set LOG_LEVEL to at least info for that line.
 */
export async function startServerProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<ChildHandle> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const handle = track(child)
  await untilReady(handle, 'firewatch', async () => handle.output().includes('"msg":"firewatch started"'), timeoutMs)
  return handle
}

/** Wait until `ready()` holds; fail early if the process exits, and kill it if it never gets ready. */
async function untilReady(handle: ChildHandle, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  let gone = false
  void handle.exited.then(() => (gone = true))
  try {
    await waitFor(async () => gone || (await ready()), timeoutMs, 50)
  } catch (err) {
    await handle.kill('SIGKILL')
    throw new Error(`${what} did not get ready: ${(err as Error).message}\n${handle.output()}`)
  }
  if (gone) throw new Error(`${what} exited before it was ready:\n${handle.output()}`)
}

export interface PrivateInflux {
  url: string
  dir: string
  httpPort: number
  /** Start influxd on the same data folder and ports (after a stop). */
  start(): Promise<void>
  /** Stop it with this signal and wait until it is gone. */
  stop(signal: NodeJS.Signals): Promise<void>
  /** Stop it and delete its data. */
  destroy(): Promise<void>
}

/**
 * A private influxd (the same binary and config format as scripts/services.sh) on free ports with its data in a
 * temporary folder, for tests that must stop InfluxDB without disturbing the shared instance.
 */
/** @param authEnabled InfluxDB 1.x `[http] auth-enabled`: every request needs a user once one exists. */
export async function startPrivateInflux(authEnabled = false): Promise<PrivateInflux> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fw-influx-'))
  const [httpPort, rpcPort] = (await freePorts(2)) as [number, number]
  await mkdir(path.join(dir, 'meta'), { recursive: true })
  const configFile = path.join(dir, 'influxdb.conf')
  await writeFile(
    configFile,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${dir}/meta"`,
      '[data]',
      `  dir = "${dir}/data"`,
      `  wal-dir = "${dir}/wal"`,
      '  query-log-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${httpPort}"`,
      '  log-enabled = false',
      `  auth-enabled = ${authEnabled}`,
      '[logging]',
      '  level = "warn"',
      '[monitor]',
      '  store-enabled = false',
      ''
    ].join('\n')
  )
  const url = `http://127.0.0.1:${httpPort}`
  let handle: ChildHandle | null = null
  const influx: PrivateInflux = {
    url,
    dir,
    httpPort,
    async start() {
      handle = track(spawn('influxd', ['-config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }))
      await untilReady(handle, 'influxd', async () => (await fetch(`${url}/ping`)).status === 204, 30_000)
    },
    async stop(signal) {
      await handle?.kill(signal)
    },
    async destroy() {
      await handle?.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  }
  try {
    await influx.start()
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return influx
}

