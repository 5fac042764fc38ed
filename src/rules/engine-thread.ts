/**
 * Runs the rule engine (engine-worker.ts) in a worker thread and mirrors its counters; requests (a sweep, a test-mode
 * reload) go to it as messages. If the thread dies it is started again: entries wait in the ingest log meanwhile and
 * its timers in BullMQ.
 */
import type { Worker } from 'node:worker_threads'
import { SupervisedThread } from '../supervised-thread.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { EngineStats } from './engine.js'
import type { WebhookStats } from '../notifications/webhook-delivery.js'
import type { RevivalStats } from './jobs.js'

export interface EngineWorkerData {
  config: Readonly<Config>
  ingestStream: string
}

export type EngineRequest =
  | { id: number; op: 'sweep'; now?: number }
  | { id: number; op: 'refreshTestModes' }
  | { id: number; op: 'block'; ms: number }
  | { id: number; op: 'stop' }

export type ThreadStats = EngineStats & { liveMessages: number; notifications: number; webhooks: WebhookStats; jobs: RevivalStats }

export type EngineWorkerMessage =
  | { type: 'ready' }
  | { type: 'stats'; stats: ThreadStats }
  | { type: 'failed'; message: string }
  | { type: 'reply'; id: number; ok: boolean; message?: string }

const ZERO: ThreadStats = { messages: 0, effects: 0, batches: 0, failures: 0, replaysSkipped: 0, deadLettered: 0, lastError: null, liveMessages: 0, notifications: 0,
  webhooks: { delivered: 0, failed: 0, deadLettered: 0 }, jobs: { revived: 0, givenUp: 0 } }

export class EngineThread extends SupervisedThread<EngineWorkerMessage> {
  /** The counters of the running thread (a restarted thread counts from zero). */
  readonly stats: ThreadStats = { ...ZERO }
  private nextId = 1
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()

  constructor(data: EngineWorkerData, log: Logger) {
    super({ name: 'rule engine', callerUrl: import.meta.url, module: 'engine-worker', workerData: data, stopTimeoutMs: 15_000, log })
  }

  protected onMessage(m: EngineWorkerMessage): void {
    if (m.type === 'stats') Object.assign(this.stats, m.stats)
    else if (m.type === 'reply') {
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (m.ok) p?.resolve()
      else p?.reject(new Error(m.message ?? 'rule engine request failed'))
    }
  }

  protected override onExit(): void {
    for (const p of this.pending.values()) p.reject(new Error('the rule engine thread exited'))
    this.pending.clear()
  }

  /** Every device finishes what it is doing and the thread's connections close; then the thread ends. */
  protected async askToStop(worker: Worker): Promise<void> {
    await this.request({ op: 'stop' }).catch(() => undefined)
    await worker.terminate()
  }

  private request(req: Omit<EngineRequest, 'id'>): Promise<void> {
    const worker = this.current
    if (!worker) return Promise.reject(new Error('the rule engine thread is not running'))
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

  /**
   * Hold the engine's thread for `ms`, as an alarm storm would keep it busy; resolves when it is free again. For tests
   * of what must not wait for the engine (the 119 forward); nothing outside the process can ask for it.
   */
  block(ms: number): Promise<void> {
    return this.request({ op: 'block', ms } as Omit<EngineRequest, 'id'>)
  }
}
