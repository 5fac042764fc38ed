/**
 * The rule engine's counters: what it read, did and failed at. The engine's thread reports them to the main thread
 * (engine-thread.ts), which serves them on /metrics.
 */

export interface EngineStats {
  messages: number
  effects: number
  batches: number
  failures: number
  /** Entries skipped because the saved state already contained them (a batch evaluated again). */
  replaysSkipped: number
  deadLettered: number
  lastError: string | null
}

export const newEngineStats = (): EngineStats => ({ messages: 0, effects: 0, batches: 0, failures: 0, replaysSkipped: 0, deadLettered: 0, lastError: null })

/** A failure that will be retried: counted, and its message kept as the last error. */
export function countFailure(stats: EngineStats, err: unknown): void {
  stats.failures++
  stats.lastError = (err as Error).message
}
