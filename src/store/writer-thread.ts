/**
 * Runs the telemetry writer (telemetry-writer.ts) in a worker thread and mirrors its counters. If the thread dies it
 * is started again: nothing is lost meanwhile, the entries wait in the ingest log.
 */
import type { Worker } from 'node:worker_threads'
import { startWorker } from '../worker-entry.js'
import type { Logger } from '../logger.js'
import type { LogLevel } from '../config/index.js'
import type { WriterStats } from './telemetry-writer.js'
import { addHistograms, emptyHistogram } from './latency-histogram.js'

export interface WriterWorkerData {
  redisUrl: string
  stream: string
  group: string
  consumerName: string
  deadLetterStream: string
  influxUrl: string
  influxDb: string
  influxToken: string | null
  logLevel: LogLevel
}

export type WriterWorkerMessage =
  | { type: 'ready' }
  | { type: 'stats'; stats: WriterStats }
  | { type: 'failed'; message: string }
  | { type: 'stopped' }

const newWorker = (workerData: WriterWorkerData) => startWorker(import.meta.url, 'writer-worker', workerData)

const ZERO: WriterStats = { written: 0, batches: 0, failures: 0, deadLettered: 0, lastError: null, writeSeconds: emptyHistogram() }

export class WriterThread {
  /** Counters over every thread this writer ran (a restarted thread counts from zero again). */
  readonly stats: WriterStats = { ...ZERO }
  private finished: WriterStats = { ...ZERO }
  private worker: Worker | null = null
  private running = false
  private stopping: Promise<void> | null = null
  private restartTimer: NodeJS.Timeout | null = null
  private restartDelayMs = 1000

  constructor(
    private readonly data: WriterWorkerData,
    private readonly log: Logger
  ) {}

  /** The thread is up and reading the log (for /readyz). */
  get alive(): boolean {
    return this.running
  }

  /** Resolves once the writer's consumer group exists and it is reading. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = newWorker(this.data)
      this.worker = worker
      let ready = false
      let last: WriterStats = { ...ZERO }
      worker.on('message', (m: WriterWorkerMessage) => {
        if (m.type === 'stats') {
          last = m.stats
          this.mirror(last)
        } else if (m.type === 'ready') {
          ready = true
          this.running = true
          this.restartDelayMs = 1000
          resolve()
        } else if (m.type === 'failed' && !ready) reject(new Error(`telemetry writer failed to start: ${m.message}`))
      })
      worker.on('error', (err) => this.log.error({ err }, 'telemetry writer thread failed'))
      worker.on('exit', (code) => {
        this.running = false
        this.finished = sum(this.finished, last)
        this.mirror({ ...ZERO, lastError: last.lastError })
        if (this.worker === worker) this.worker = null
        if (!ready) reject(new Error(`telemetry writer thread exited with ${code} before it was ready`))
        if (this.stopping || !ready) return
        this.log.error({ code }, 'telemetry writer thread exited; starting it again')
        this.scheduleRestart()
      })
    })
  }

  /** Restarted until it runs again, backing off to 30 s: the entries wait in the log meanwhile. */
  private scheduleRestart(): void {
    const delay = this.restartDelayMs
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 30_000)
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      if (this.stopping) return
      this.start().catch((err) => {
        this.log.error({ err, retryInMs: this.restartDelayMs }, 'telemetry writer thread did not restart')
        if (!this.stopping) this.scheduleRestart()
      })
    }, delay)
    this.restartTimer.unref()
  }

  private mirror(current: WriterStats): void {
    Object.assign(this.stats, sum(this.finished, current), { lastError: current.lastError ?? this.finished.lastError })
  }

  /** Finishes the batch in progress (acking what was stored) and ends the thread. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.halt()
    return this.stopping
  }

  private async halt(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    const worker = this.worker
    if (!worker) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    worker.postMessage({ type: 'stop' })
    const timeout = setTimeout(() => void worker.terminate(), 12_000)
    await exited
    clearTimeout(timeout)
  }
}

function sum(a: WriterStats, b: WriterStats): WriterStats {
  return {
    written: a.written + b.written,
    batches: a.batches + b.batches,
    failures: a.failures + b.failures,
    deadLettered: a.deadLettered + b.deadLettered,
    lastError: b.lastError ?? a.lastError,
    writeSeconds: addHistograms(a.writeSeconds, b.writeSeconds)
  }
}
