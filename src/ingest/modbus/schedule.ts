/**
 * A poll schedule that does not drift: each tick is planned from the previous *planned* time, never from when a
 * poll finished, and ticks sit at fixed offsets of the epoch (`phase + k × interval`), so a restart keeps them.
 *
 * The waits are timed on the monotonic clock (`performance.now()`): the wall clock may be stepped (NTP, an operator),
 * and a step back would otherwise stop polling for as long as the step. The wall clock only names each tick: the
 * epoch slot nearest to the wall time the tick was planned for. A tick more than one interval late (the event loop
 * was blocked) is skipped, not run late in a burst.
 */
export class Schedule {
  private timer: NodeJS.Timeout | null = null
  /** Monotonic time of the next tick. */
  private next = 0
  /** Ticks skipped because the process fell more than one interval behind. */
  skipped = 0

  constructor(
    private readonly intervalMs: number,
    private readonly phaseMs: number,
    private readonly tick: (plannedAt: number) => void
  ) {}

  start(): void {
    const wall = Date.now()
    const k = Math.floor((wall - this.phaseMs) / this.intervalMs) + 1
    this.next = performance.now() + (k * this.intervalMs + this.phaseMs - wall)
    this.arm()
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private arm(): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.next - performance.now()))
  }

  private fire(): void {
    const late = performance.now() - this.next
    if (late > this.intervalMs) {
      // Skip the ticks more than one interval late; run the latest, which is less than one interval late.
      const skip = Math.floor(late / this.intervalMs)
      this.skipped += skip
      this.next += skip * this.intervalMs
    }
    const lateMs = performance.now() - this.next
    this.next += this.intervalMs
    this.arm()
    this.tick(this.slotNear(Date.now() - lateMs))
  }

  /** The epoch slot `phase + k × interval` nearest to wall time `t`. */
  private slotNear(t: number): number {
    return Math.round((t - this.phaseMs) / this.intervalMs) * this.intervalMs + this.phaseMs
  }
}

/** A stable phase in [0, interval) from the device id, so many devices with one interval do not poll at once. */
export function phaseOf(id: string, intervalMs: number): number {
  let h = 2166136261
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619)
  return (h >>> 0) % intervalMs
}
