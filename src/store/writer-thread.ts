/**
 * Runs the telemetry writer (telemetry-writer.ts) in a worker thread and mirrors its counters. If the thread dies it
 * is started again: nothing is lost meanwhile, the entries wait in the ingest log.
 */
import type { Worker } from 'node:worker_threads'
import { SupervisedThread } from '../supervised-thread.js'
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

const ZERO: WriterStats = { written: 0, batches: 0, failures: 0, deadLettered: 0, lastError: null, writeSeconds: emptyHistogram() }

export class WriterThread extends SupervisedThread<WriterWorkerMessage> {
  /** Counters over every thread this writer ran (a restarted thread counts from zero again). */
  readonly stats: WriterStats = { ...ZERO }
  private finished: WriterStats = { ...ZERO }
  private last: WriterStats = { ...ZERO }

  constructor(data: WriterWorkerData, log: Logger) {
    super({ name: 'telemetry writer', callerUrl: import.meta.url, module: 'writer-worker', workerData: data, stopTimeoutMs: 12_000, log })
  }

  protected onMessage(m: WriterWorkerMessage): void {
    if (m.type !== 'stats') return
    this.last = m.stats
    this.mirror(m.stats)
  }

  protected override onExit(): void {
    this.finished = sum(this.finished, this.last)
    this.mirror({ ...ZERO, lastError: this.last.lastError })
    this.last = { ...ZERO }
  }

  /** It finishes the batch in progress (acking what was stored), then exits. */
  protected async askToStop(worker: Worker): Promise<void> {
    worker.postMessage({ type: 'stop' })
  }

  private mirror(current: WriterStats): void {
    Object.assign(this.stats, sum(this.finished, current), { lastError: current.lastError ?? this.finished.lastError })
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
