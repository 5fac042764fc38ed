/**
 * Runs the 119 forward's deliveries (forward-worker.ts) in a worker thread of their own and mirrors their counters.
 * GB 50440 gives a confirmed fire alarm 3 s to reach the 119 command center; in the rule engine's thread the forward
 * waited behind whatever the engine was doing (an alarm storm is when both are busiest). If the thread dies it is
 * started again: the forwards wait in BullMQ meanwhile, and one it was sending is taken up again once its lock expires.
 */
import type { Worker } from 'node:worker_threads'
import { SupervisedThread } from '../supervised-thread.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { ForwardStats } from './forward-119.js'

export interface ForwardWorkerData {
  config: Readonly<Config>
}

/** The forward's counters, and the give-up notices it published on the live channel. */
export type ForwardThreadStats = ForwardStats & { liveMessages: number }

export type ForwardWorkerMessage =
  | { type: 'ready' }
  | { type: 'stats'; stats: ForwardThreadStats }
  | { type: 'failed'; message: string }
  | { type: 'stopped' }

const ZERO: ForwardThreadStats = { delivered: 0, failed: 0, gaveUp: 0, liveMessages: 0 }

export class ForwardThread extends SupervisedThread<ForwardWorkerMessage> {
  /**
   * Counters over every thread this forward ran: a restarted thread counts from zero, and what the one before had
   * reported (every 200 ms) is kept.
   */
  readonly stats: ForwardThreadStats = { ...ZERO }
  private finished: ForwardThreadStats = { ...ZERO }
  private last: ForwardThreadStats = { ...ZERO }

  constructor(data: ForwardWorkerData, log: Logger) {
    // A stop lets the attempts in flight finish: each is cut at FORWARD_119_TIMEOUT_MS (≤ 3 s), then recorded.
    super({ name: '119 forward', callerUrl: import.meta.url, module: 'forward-worker', workerData: data, stopTimeoutMs: 10_000, log })
  }

  protected onMessage(m: ForwardWorkerMessage): void {
    if (m.type !== 'stats') return
    this.last = m.stats
    Object.assign(this.stats, sum(this.finished, m.stats))
  }

  protected override onExit(): void {
    this.finished = sum(this.finished, this.last)
    this.last = { ...ZERO }
    Object.assign(this.stats, this.finished)
  }

  protected async askToStop(worker: Worker): Promise<void> {
    worker.postMessage({ type: 'stop' })
  }
}

function sum(a: ForwardThreadStats, b: ForwardThreadStats): ForwardThreadStats {
  return { delivered: a.delivered + b.delivered, failed: a.failed + b.failed, gaveUp: a.gaveUp + b.gaveUp, liveMessages: a.liveMessages + b.liveMessages }
}
