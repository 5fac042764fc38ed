/**
 * Runs the rule engine (engine-worker.ts) in a worker thread and mirrors its counters; requests (a sweep, a test-mode
 * reload) go to it as messages. If the thread dies it is started again: entries wait in the ingest log meanwhile and
 * its timers in BullMQ.
 */
import type { Worker } from 'node:worker_threads'
import { startWorker } from '../worker-entry.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { EngineStats } from './engine.js'
import type { NotificationStats } from '../notifications/index.js'

export interface EngineWorkerData {
  config: Readonly<Config>
  ingestStream: string
}

export type EngineRequest = { id: number; op: 'sweep'; now?: number } | { id: number; op: 'refreshTestModes' } | { id: number; op: 'stop' }

export type ThreadStats = EngineStats & { liveMessages: number; notifications: number; deliveries: NotificationStats }

export type EngineWorkerMessage =
  | { type: 'ready' }
  | { type: 'stats'; stats: ThreadStats }
  | { type: 'failed'; message: string }
  | { type: 'reply'; id: number; ok: boolean; message?: string }

const newWorker = (workerData: EngineWorkerData) => startWorker(import.meta.url, 'engine-worker', workerData)

const ZERO: ThreadStats = { messages: 0, effects: 0, batches: 0, failures: 0, replaysSkipped: 0, deadLettered: 0, lastError: null, liveMessages: 0, notifications: 0,
  deliveries: { webhooks: { delivered: 0, failed: 0, deadLettered: 0 }, forward119: { delivered: 0, failed: 0, gaveUp: 0 } } }

export class EngineThread {
  /** The counters of the running thread (a restarted thread counts from zero). */
  readonly stats: ThreadStats = { ...ZERO }
  private worker: Worker | null = null
  private running = false
  private stopping: Promise<void> | null = null
  private restartTimer: NodeJS.Timeout | null = null
  private restartDelayMs = 1000
  private nextId = 1
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()

  constructor(
    private readonly data: EngineWorkerData,
    private readonly log: Logger
  ) {}

  get alive(): boolean {
    return this.running
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = newWorker(this.data)
      this.worker = worker
      let ready = false
      worker.on('message', (m: EngineWorkerMessage) => {
        if (m.type === 'stats') Object.assign(this.stats, m.stats)
        else if (m.type === 'ready') {
          ready = true
          this.running = true
          this.restartDelayMs = 1000
          resolve()
        } else if (m.type === 'failed' && !ready) reject(new Error(`rule engine failed to start: ${m.message}`))
        else if (m.type === 'reply') {
          const p = this.pending.get(m.id)
          this.pending.delete(m.id)
          if (m.ok) p?.resolve()
          else p?.reject(new Error(m.message ?? 'rule engine request failed'))
        }
      })
      worker.on('error', (err) => this.log.error({ err }, 'rule engine thread failed'))
      worker.on('exit', (code) => {
        this.running = false
        if (this.worker === worker) this.worker = null
        for (const p of this.pending.values()) p.reject(new Error('the rule engine thread exited'))
        this.pending.clear()
        if (!ready) reject(new Error(`rule engine thread exited with ${code} before it was ready`))
        if (this.stopping || !ready) return
        this.log.error({ code }, 'rule engine thread exited; starting it again')
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
        this.log.error({ err, retryInMs: this.restartDelayMs }, 'rule engine thread did not restart')
        if (!this.stopping) this.scheduleRestart()
      })
    }, delay)
    this.restartTimer.unref()
  }

  private request(req: Omit<EngineRequest, 'id'>): Promise<void> {
    const worker = this.worker
    if (!worker || !this.running) return Promise.reject(new Error('the rule engine thread is not running'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.postMessage({ ...req, id })
    })
  }

  /** Run the periodic sweep now (as of `now`: tests ask about a later moment). */
  sweep(now?: number): Promise<void> {
    return this.request({ op: 'sweep', ...(now !== undefined ? { now } : {}) } as Omit<EngineRequest, 'id'>)
  }

  /** Re-read device test modes; resolves once the engine applies them. */
  refreshTestModes(): Promise<void> {
    return this.request({ op: 'refreshTestModes' })
  }

  /** Lets every device finish what it is doing, closes the thread's connections and ends it. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.halt()
    return this.stopping
  }

  private async halt(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    const worker = this.worker
    if (!worker) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    const timeout = setTimeout(() => void worker.terminate(), 15_000)
    await this.request({ op: 'stop' }).catch(() => undefined)
    await worker.terminate()
    await exited
    clearTimeout(timeout)
  }
}
