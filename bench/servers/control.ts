/**
 * The IPC side of a benchmarked server process: the parent asks it to collect garbage before a memory reading,
 * to start and stop a CPU profile around a measured round, and to stop. The process exits when the parent goes away.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'

export interface Request {
  id: number
  cmd: 'gc' | 'profile-start' | 'profile-stop' | 'stats' | 'stop'
  arg?: string
}

export interface Reply {
  id: number
  ok: boolean
  result?: unknown
  error?: string
}

export interface Ready {
  type: 'ready'
  mqttPort: number
  httpPort: number | null
}

export function serveControl(ports: Omit<Ready, 'type'>, hooks: { stop(): Promise<void>; stats?(): unknown }): void {
  if (!process.send) throw new Error('a benchmark server runs as a child process with an IPC channel')
  let session: Session | null = null
  let stopping = false

  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    const force = setTimeout(() => process.exit(1), 15_000)
    force.unref()
    try {
      await hooks.stop()
    } finally {
      process.exit(code)
    }
  }

  const handle = async (req: Request): Promise<unknown> => {
    switch (req.cmd) {
      case 'gc': {
        const gc = (globalThis as { gc?: () => void }).gc
        if (!gc) throw new Error('start the process with --expose-gc')
        gc()
        gc()
        return process.memoryUsage()
      }
      case 'profile-start':
        session = new Session()
        session.connect()
        await session.post('Profiler.enable')
        await session.post('Profiler.setSamplingInterval', { interval: 500 })
        await session.post('Profiler.start')
        return null
      case 'profile-stop': {
        if (!session) throw new Error('no profile running')
        const { profile } = await session.post('Profiler.stop')
        session.disconnect()
        session = null
        writeFileSync(req.arg!, JSON.stringify(profile))
        return req.arg
      }
      case 'stats':
        return hooks.stats?.() ?? null
      case 'stop':
        setImmediate(() => void stop(0))
        return null
    }
  }

  process.on('message', (req: Request) => {
    handle(req).then(
      (result) => process.send!({ id: req.id, ok: true, result } satisfies Reply),
      (err: Error) => process.send!({ id: req.id, ok: false, error: err.message } satisfies Reply)
    )
  })
  // The parent ended (or was killed): do not outlive it.
  process.on('disconnect', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  process.on('SIGINT', () => void stop(0))
  process.send({ type: 'ready', ...ports } satisfies Ready)
}
