/**
 * What the engine's readers have finished, sent to Redis together every 10 ms in one MULTI: the acks of the entries
 * done (each stream's own) and when each device was last heard (`{prefix}rules:heard`, a sorted set scored by time,
 * which the silence sweep reads). One round trip for many entries, and none per entry.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'

/** Where an entry came from: the ingest log, or its events stream (events read ahead of readings). */
export type Source = 'log' | 'events'

export class AckBatch {
  /** When each device was last heard (a sorted set scored by time: the silence sweep reads only the quiet ones). */
  readonly heardKey: string
  private readonly toAck: Record<Source, string[]> = { log: [], events: [] }
  private readonly heardMarks = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly d: { redis: Redis; consumer: LogConsumer; eventConsumer: LogConsumer; prefix: string; log: Logger }
  ) {
    this.heardKey = `${d.prefix}rules:heard`
  }

  /** An entry is done: ack it with the next flush. */
  done(source: Source, id: string): void {
    this.toAck[source].push(id)
    this.timer ??= setTimeout(() => void this.flush(), 10)
  }

  /** The device was heard at rx (when the server received its message); recorded with the next flush. */
  heard(deviceId: string, rx: number): void {
    this.heardMarks.set(deviceId, Math.max(this.heardMarks.get(deviceId) ?? 0, rx))
  }

  /** When the device was heard since the last flush (0 if not). */
  heardUnflushed(deviceId: string): number {
    return this.heardMarks.get(deviceId) ?? 0
  }

  /** Send what is waiting now instead of at the next flush (on stop). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    await this.flush()
  }

  /** Ack what is done and record who was heard: one round trip for many entries. */
  private async flush(): Promise<void> {
    this.timer = null
    const ids = this.toAck.log.splice(0)
    const eventIds = this.toAck.events.splice(0)
    const heard = [...this.heardMarks]
    this.heardMarks.clear()
    try {
      const multi = this.d.redis.multi()
      if (ids.length) multi.xack(this.d.consumer.stream, this.d.consumer.group, ...ids)
      if (eventIds.length) multi.xack(this.d.eventConsumer.stream, this.d.eventConsumer.group, ...eventIds)
      if (heard.length) multi.zadd(this.heardKey, ...heard.flatMap(([id, rx]) => [rx, id]))
      await multi.exec()
    } catch (err) {
      // Unacked entries come back at the next start and are skipped as applied; the heard marks come with new messages.
      this.d.log.warn({ err, entries: ids.length }, 'ack failed; the entries will be read again and skipped')
    }
  }
}
