/**
 * Acknowledgement latencies for percentiles. A long run at thousands of messages a second would hold millions of
 * samples, so past `capacity` it keeps a uniform sample (reservoir sampling, Vitter's algorithm R), seeded.
 */
import { unit } from './random.js'

export class LatencySample {
  private readonly samples: number[] = []
  private seen = 0

  constructor(
    private readonly seed = 1,
    private readonly capacity = 100_000
  ) {}

  add(ms: number): void {
    this.seen++
    if (this.samples.length < this.capacity) {
      this.samples.push(ms)
      return
    }
    const slot = Math.floor(unit(this.seed, this.seen) * this.seen)
    if (slot < this.capacity) this.samples[slot] = ms
  }

  /** The q-quantile (0–1) by nearest rank, in ms rounded to 0.01; null without samples. */
  quantile(q: number): number | null {
    if (this.samples.length === 0) return null
    const sorted = [...this.samples].sort((a, b) => a - b)
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
    return Math.round(sorted[rank]! * 100) / 100
  }
}
