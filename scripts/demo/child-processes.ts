/**
 * The demo's child processes: started in process groups of their own (so that a Ctrl-C reaches only the demo, which
 * stops them in order), with scripts/demo-watchdog.ts preloaded (so that they stop by themselves should the demo be
 * killed outright), and stopped with SIGTERM, then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { DemoError } from './errors.js'
import { warn } from './output.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const WATCHDOG = pathToFileURL(path.join(ROOT, 'scripts', 'demo-watchdog.ts')).href

/** Everything this process started and has not seen exit yet. */
export const children = new Set<ChildProcess>()

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Throws, naming `log`, when `child` (`what`) has exited. */
export function assertRunning(child: ChildProcess, what: string, log: { file: string; title: string }, when = ''): void {
  if (exited(child)) throw new DemoError(`${what} exited${when} (code ${child.exitCode ?? child.signalCode})`, log)
}

/** Signal a child's whole process group (it leads one: it was spawned detached). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || exited(child)) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

/**
 * A TypeScript entry point run by node with tsx and the watchdog preloaded, in a process group of its own, its
 * output appended to `logFile`, with an IPC channel whose closing tells it this process is gone.
 */
export function startChild(entry: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a', 0o600)
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', WATCHDOG, entry, ...args], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', fd, fd, 'ipc']
    })
    children.add(child)
    child.on('exit', () => children.delete(child))
    // Nothing is sent over the channel; it only has to exist. Keep it from holding this process open.
    child.channel?.unref()
    return child
  } finally {
    closeSync(fd)
  }
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves once it exited. */
export async function stopChild(child: ChildProcess, name: string, graceMs: number): Promise<void> {
  if (exited(child)) return
  const gone = once(child, 'exit')
  signalGroup(child, 'SIGTERM')
  const result = await Promise.race([gone.then(() => 'exited' as const), sleep(graceMs).then(() => 'timeout' as const)])
  if (result === 'timeout') {
    warn(`${name} did not stop within ${graceMs / 1000} s; killing it`)
    signalGroup(child, 'SIGKILL')
    await gone
  }
  // Its group may still hold something it started.
  signalGroup(child, 'SIGKILL')
}

/** The environment of the server and the device runner: this one's, less every Firewatch variable, plus the demo's. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of [
    'MQTT_PORT',
    'MQTT_TLS_PORT',
    'MQTT_TLS_CERT',
    'MQTT_TLS_KEY',
    'GB26875_PORT',
    'HTTP_PORT',
    'HOST',
    'REDIS_URL',
    'REDIS_PREFIX',
    'DATABASE_URL',
    'INFLUX_URL',
    'INFLUX_DB',
    'INFLUX_TOKEN',
    'FIREWATCH_ADMIN_TOKEN',
    'FIREWATCH_DEVICE_SECRET',
    'LOG_LEVEL',
    'DEVICES_DIR',
    'INGEST_CONSUMER',
    'NODE_OPTIONS'
  ]) {
    delete env[name]
  }
  return { ...env, ...extra }
}

/** Run a command in the foreground, its output on ours; resolves to its exit code (SIGTERMed on `stop`). */
export function runCommand(cmd: string, args: string[], stop: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
    const onAbort = () => child.kill('SIGTERM')
    stop.addEventListener('abort', onAbort, { once: true })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      stop.removeEventListener('abort', onAbort)
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1))
    })
  })
}
