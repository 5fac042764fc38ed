/**
 * The devices' rule state (evaluator.ts's DeviceState): the most recently used in memory, every one in Redis
 * (`{prefix}rules:dev:{device}`, a hash), written through on every change. Whatever fails while a state is being
 * changed drops it from memory (forget): the saved state is the truth, and is loaded again.
 */
import type { Redis } from 'ioredis'
import { dirtyFields, restoreState, type DeviceState } from './evaluator.js'

export class DeviceStates {
  private readonly cache = new Map<string, DeviceState>()

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** States kept in memory: the least recently used leave past it (Redis has them). */
    private readonly cacheSize: number
  ) {}

  /** The Redis hash of a device's state. */
  key(deviceId: string): string {
    return `${this.prefix}rules:dev:${deviceId}`
  }

  /** Whether the device's state is in memory. */
  has(deviceId: string): boolean {
    return this.cache.has(deviceId)
  }

  /** The device's state in memory (after load). */
  get(deviceId: string): DeviceState | undefined {
    return this.cache.get(deviceId)
  }

  /** A device's state, now the most recently used (the least recently used leave memory past the cache size). */
  touch(deviceId: string): DeviceState {
    const state = this.cache.get(deviceId)!
    this.cache.delete(deviceId)
    this.cache.set(deviceId, state)
    return state
  }

  /** Drop what memory holds for the device: it may be ahead of what was saved. */
  forget(deviceId: string): void {
    this.cache.delete(deviceId)
  }

  /** Bring the saved state of these devices into memory (one round trip for all of them). */
  async load(deviceIds: Set<string>): Promise<void> {
    const missing = [...deviceIds].filter((id) => !this.cache.has(id))
    if (missing.length === 0) return
    const pipe = this.redis.pipeline()
    for (const id of missing) pipe.hgetall(this.key(id))
    const replies = (await pipe.exec()) ?? []
    missing.forEach((id, i) => {
      const [err, hash] = replies[i] ?? [new Error('no reply'), null]
      if (err) throw err
      this.remember(id, restoreState(id, hash as Record<string, string>))
    })
  }

  /** Write what changed in the state since it was last saved. */
  async save(state: DeviceState): Promise<void> {
    const fields = dirtyFields(state)
    if (fields.size === 0) return
    const set: Record<string, string> = {}
    const del: string[] = []
    for (const [f, v] of fields) {
      if (v === null) del.push(f)
      else set[f] = v
    }
    const multi = this.redis.multi()
    if (Object.keys(set).length) multi.hset(this.key(state.deviceId), set)
    if (del.length) multi.hdel(this.key(state.deviceId), ...del)
    await multi.exec()
    state.dirty.clear()
  }

  private remember(deviceId: string, state: DeviceState): void {
    this.cache.set(deviceId, state)
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!)
  }
}
