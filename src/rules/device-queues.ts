/**
 * Per-device work queues: everything that reads or changes one device's state (its entries, its duration timers, the
 * silence sweep) runs after what was queued for that device before it. Devices never wait for each other: a fire
 * alarm of one panel is evaluated while another device's alarm storm is still being written.
 */

export class DeviceQueues {
  private readonly queues = new Map<string, { tail: Promise<unknown>; size: number }>()

  /** Run fn on this device's queue, after everything queued for the device before it (failed or not). */
  run<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    let q = this.queues.get(deviceId)
    if (!q) this.queues.set(deviceId, (q = { tail: Promise.resolve(), size: 0 }))
    const queue = q
    queue.size++
    const next = queue.tail.then(fn, fn).finally(() => {
      if (--queue.size === 0 && this.queues.get(deviceId) === queue) this.queues.delete(deviceId)
    })
    queue.tail = next.catch(() => undefined)
    return next
  }

  /** Whether the device has work queued or running. */
  has(deviceId: string): boolean {
    return this.queues.has(deviceId)
  }

  /** Wait until no device has work left, including work queued meanwhile. */
  async drain(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()].map((q) => q.tail))
  }
}
