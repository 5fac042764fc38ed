/**
 * A worker thread that is started again when it dies: the telemetry writer's, the rule engine's and the 119 forward's.
 * Their work waits in the ingest log (and BullMQ) meanwhile, so a restart loses nothing; it only has to happen,
 * backing off from 1 s to 30 s until the thread runs again.
 *
 * The thread says `{type: 'ready'}` once it works, or `{type: 'failed', message}` if it cannot start; every other
 * message goes to {@link SupervisedThread.onMessage}. How a thread is asked to stop is its own
 * ({@link SupervisedThread.askToStop}); if it has not exited after `stopTimeoutMs` it is terminated.
 */
import type { Worker } from 'node:worker_threads'
import { startWorker } from './worker-entry.js'
import type { Logger } from './logger.js'

export interface SupervisedThreadOptions {
  /** For logs and errors: "telemetry writer", "rule engine". */
  name: string
  /** The caller's `import.meta.url` and the worker module's name beside it (see startWorker). */
  callerUrl: string
  module: string
  workerData: unknown
  /** How long a stop may take before the thread is terminated. */
  stopTimeoutMs: number
  log: Logger
}

type Lifecycle = { type: 'ready' } | { type: 'failed'; message: string }

export abstract class SupervisedThread<M extends { type: string }> {
  private worker: Worker | null = null
  private running = false
  private stopping: Promise<void> | null = null
  private restartTimer: NodeJS.Timeout | null = null
  private restartDelayMs = 1000

  constructor(protected readonly o: SupervisedThreadOptions) {}

  /** The thread is up and working (for /readyz). */
  get alive(): boolean {
    return this.running
  }

  /** The running thread, if any. */
  protected get current(): Worker | null {
    return this.running ? this.worker : null
  }

  /** A message of the thread other than ready / failed. */
  protected abstract onMessage(m: M): void
  /** The thread ended (after it was ready or not): settle what waited on it. */
  protected onExit(): void {}
  /** Ask the running thread to finish; resolves when asked (the exit is awaited separately). */
  protected abstract askToStop(worker: Worker): Promise<void>

  /** Resolves once the thread says it is ready; rejects if it fails or exits first. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(this.o.callerUrl, this.o.module, this.o.workerData)
      this.worker = worker
      let ready = false
      worker.on('message', (m: M | Lifecycle) => {
        if (m.type === 'ready') {
          ready = true
          this.running = true
          this.restartDelayMs = 1000
          resolve()
        } else if (m.type === 'failed') {
          if (!ready) reject(new Error(`${this.o.name} failed to start: ${(m as Lifecycle & { type: 'failed' }).message}`))
        } else this.onMessage(m as M)
      })
      worker.on('error', (err) => this.o.log.error({ err }, `${this.o.name} thread failed`))
      worker.on('exit', (code) => {
        this.running = false
        if (this.worker === worker) this.worker = null
        this.onExit()
        if (!ready) reject(new Error(`${this.o.name} thread exited with ${code} before it was ready`))
        if (this.stopping || !ready) return
        this.o.log.error({ code }, `${this.o.name} thread exited; starting it again`)
        this.scheduleRestart()
      })
    })
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 30_000)
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      if (this.stopping) return
      this.start().catch((err) => {
        this.o.log.error({ err, retryInMs: this.restartDelayMs }, `${this.o.name} thread did not restart`)
        if (!this.stopping) this.scheduleRestart()
      })
    }, delay)
    this.restartTimer.unref()
  }

  /** Lets the thread finish what it is doing and ends it. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.halt()
    return this.stopping
  }

  private async halt(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    const worker = this.worker
    if (!worker) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    const timeout = setTimeout(() => void worker.terminate(), this.o.stopTimeoutMs)
    await this.askToStop(worker)
    await exited
    clearTimeout(timeout)
  }
}
