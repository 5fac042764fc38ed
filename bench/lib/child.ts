/** A benchmarked server as a child process (tsc-compiled, plain node), with its IPC control channel and /proc readings. */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { Ready, Reply, Request } from '../servers/control.js'
import { cpuSeconds, rssBytes, threadCpuSeconds } from './proc.js'
import { progress } from './progress.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const BENCH = path.join(HERE, '..')
const ROOT = path.join(BENCH, '..')
export const SERVERS = {
  'raw-aedes': path.join(BENCH, 'servers', 'raw-aedes.ts'),
  firewatch: path.join(BENCH, 'servers', 'firewatch.ts')
} as const

let compiled: string | null = null

/**
 * Compile the servers with tsc (bench/tsconfig.servers.json) into dist/.bench-<pid>/, inside the installation so
 * Firewatch finds its devices/ and migrations as `node dist/src/server.js` does. The measured processes then run on
 * plain node like production, without the tsx loader thread (tens of MiB of RSS that shrink at unpredictable times).
 * Type errors elsewhere do not stop the build (tsc still emits); a missing output falls back to tsx.
 */
export async function buildServers(): Promise<void> {
  const outDir = path.join(ROOT, 'dist', `.bench-${process.pid}`)
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  await new Promise<void>((resolve) => {
    execFile(process.execPath, [tsc, '-p', path.join(BENCH, 'tsconfig.servers.json'), '--outDir', outDir], (err, stdout) => {
      if (err) progress(`tsc reported problems (the output is used anyway):\n${stdout.split('\n').slice(0, 10).join('\n')}`)
      resolve()
    })
  })
  compiled = outDir
  for (const kind of Object.keys(SERVERS) as (keyof typeof SERVERS)[]) {
    if (!existsSync(compiledEntry(kind)!)) {
      progress(`no compiled ${kind} server; running it through tsx`)
      compiled = null
    }
  }
}

export const isCompiled = () => compiled !== null

/** Remove the compiled servers. */
export function removeBuild(): void {
  rmSync(path.join(ROOT, 'dist', `.bench-${process.pid}`), { recursive: true, force: true })
  try {
    rmdirSync(path.join(ROOT, 'dist')) // only when empty, i.e. when the build made it
  } catch {
    // not empty, or not there
  }
}

function compiledEntry(kind: keyof typeof SERVERS): string | null {
  return compiled ? path.join(compiled, 'bench', 'servers', `${kind}.js`) : null
}

const live = new Set<ChildProcess>()

/**
 * Node arguments that run another bench script as a child (e.g. `load/background`, relative to bench/, without the
 * extension): the compiled .js when buildServers made one, else the TypeScript source through tsx.
 */
export function scriptArgs(rel: string): string[] {
  const js = compiled ? path.join(compiled, 'bench', `${rel}.js`) : null
  return js && existsSync(js) ? [js] : ['--import', 'tsx', path.join(BENCH, `${rel}.ts`)]
}

/** Count this child among those killChildren ends (by its pid) when a run is interrupted. */
export function trackChild(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Kill (by pid) the children still running; for an interrupted run. */
export function killChildren(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

export class ServerChild {
  private nextId = 1
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private exited: Promise<number | null>

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly mqttPort: number,
    readonly httpPort: number | null
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode)
      else child.once('exit', (code) => resolve(code))
    })
    child.on('message', (msg: Reply) => {
      const w = this.waiting.get(msg.id)
      if (!w) return
      this.waiting.delete(msg.id)
      if (msg.ok) w.resolve(msg.result)
      else w.reject(new Error(`${name}: ${msg.error}`))
    })
    child.once('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error(`${name} exited`))
      this.waiting.clear()
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  /** `entry` overrides the script (e.g. the same server of another checkout, for an A/B comparison). */
  static async start(
    kind: keyof typeof SERVERS,
    env: Record<string, string> = {},
    { timeoutMs = 60_000, entry = compiledEntry(kind) ?? SERVERS[kind] }: { timeoutMs?: number; entry?: string } = {}
  ): Promise<ServerChild> {
    // Compiled servers (.js, see buildServers) run on plain node; TypeScript sources through the tsx loader.
    const args = entry.endsWith('.ts') ? ['--expose-gc', '--import', 'tsx', entry] : ['--expose-gc', entry]
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    trackChild(child)
    // The server logs (pino, JSON) go to our stderr, tagged, so they never mix with the summary on stdout.
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => process.stderr.write(`  [${kind}] ${line}\n`))
    }
    const ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${kind} did not start within ${timeoutMs} ms`))
      }, timeoutMs)
      child.on('message', (msg: Ready) => {
        if (msg && (msg as { type?: string }).type === 'ready') {
          clearTimeout(timer)
          resolve(msg)
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`${kind} exited with code ${code} before it was ready`))
      })
    })
    progress(`${kind} server running as pid ${child.pid}, MQTT on 127.0.0.1:${ready.mqttPort}`)
    return new ServerChild(kind, child, ready.mqttPort, ready.httpPort)
  }

  request<T = unknown>(cmd: Request['cmd'], arg?: string, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`${this.name}: ${cmd} got no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        }
      })
      this.child.send({ id, cmd, ...(arg !== undefined ? { arg } : {}) } satisfies Request)
    })
  }

  /** VmRSS in bytes, read from /proc/<pid>/status. */
  rss(): number {
    const rss = rssBytes(this.pid)
    if (rss === null) throw new Error(`${this.name} (pid ${this.pid}) is gone`)
    return rss
  }

  /** CPU seconds (user + system) used so far. */
  cpu(): number {
    return cpuSeconds(this.pid) ?? 0
  }

  /** CPU seconds so far by thread group (main, fw-writer, fw-engine, other). */
  threads(): Record<string, number> {
    return threadCpuSeconds(this.pid)
  }

  /**
   * VmRSS once the process has settled: V8's memory reducer shrinks the heap about 8 s after activity, and glibc
   * returns freed memory lazily, so RSS is read after a full GC, every 2 s, until two readings agree within 1 MiB
   * and at least `minMs` have passed (at most `maxMs`).
   */
  async settledRss(minMs = 10_000, maxMs = 24_000): Promise<number> {
    const t0 = Date.now()
    let last = -Infinity
    for (;;) {
      await this.request('gc')
      const rss = this.rss()
      const elapsed = Date.now() - t0
      if ((elapsed >= minMs && Math.abs(rss - last) < 1024 * 1024) || elapsed >= maxMs) return rss
      last = rss
      await new Promise((r) => setTimeout(r, 2000))
    }
  }

  /** Stop gracefully; kill (this pid only) when that takes too long. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.request('stop', undefined, timeoutMs).catch(() => undefined)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    await this.exited
    clearTimeout(timer)
  }
}
