/**
 * A latency histogram kept as plain numbers, so a worker thread can count and post it and the main thread can add
 * the counts of every thread it ran (as it does the other writer counters) before /metrics publishes them.
 */

/** Upper bounds of the buckets, seconds (Prometheus `le`); the last bucket, +Inf, is implied. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const

export interface LatencyHistogram {
  /** Observations per bucket (not cumulative), one more than LATENCY_BUCKETS: the last is above every bound. */
  counts: number[]
  sum: number
  count: number
}

export const emptyHistogram = (): LatencyHistogram => ({ counts: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 })

export function observe(h: LatencyHistogram, seconds: number): void {
  const i = LATENCY_BUCKETS.findIndex((le) => seconds <= le)
  h.counts[i === -1 ? LATENCY_BUCKETS.length : i]!++
  h.sum += seconds
  h.count++
}

export function addHistograms(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  return { counts: a.counts.map((n, i) => n + (b.counts[i] ?? 0)), sum: a.sum + b.sum, count: a.count + b.count }
}
