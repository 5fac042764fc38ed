/**
 * Telemetry writer: the ingest-log consumer group that stores readings, events and status in InfluxDB in batches.
 * An entry is acked only after InfluxDB accepted it; while InfluxDB is down the backlog waits in the log and is
 * written when it returns. A batch InfluxDB refuses as malformed is split, and what it still refuses goes to the
 * dead-letter stream with the reason, so one bad entry never blocks the others.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { LogConsumer } from '../ingest/log-consumer.js'
import type { LogEntry } from '../ingest/ingest-log.js'
import type { IngestMessage } from '../ingest/types.js'
import { InfluxRejectedError, type TelemetryStore } from './influx.js'
import { emptyHistogram, observe, type LatencyHistogram } from './latency-histogram.js'

export interface TelemetryWriterOptions {
  /** Stream the entries InfluxDB refuses are moved to. */
  deadLetterStream: string
  /** Longest wait between retries while InfluxDB is failing. @defaultValue 5000 */
  maxBackoffMs?: number
  /**
   * After a batch of fewer entries than `fullBatch`, wait this long before reading again, so the next InfluxDB request
   * and Redis round trips carry more entries: what each costs per request is spread over more readings. @defaultValue 10
   */
  lingerMs?: number
  /** Batches of this many entries or more are followed by the next read at once. @defaultValue 250 */
  fullBatch?: number
}

export interface WriterStats {
  written: number
  batches: number
  failures: number
  deadLettered: number
  lastError: string | null
  /** How long each InfluxDB write request took, accepted or not. */
  writeSeconds: LatencyHistogram
}

export class TelemetryWriter {
  private running = false
  private stopped = false
  private loop: Promise<void> | null = null
  private wake: (() => void) | null = null
  readonly stats: WriterStats = { written: 0, batches: 0, failures: 0, deadLettered: 0, lastError: null, writeSeconds: emptyHistogram() }

  constructor(
    private readonly consumer: LogConsumer,
    private readonly store: TelemetryStore,
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly opts: TelemetryWriterOptions
  ) {}

  async start(): Promise<void> {
    await this.consumer.ensureGroup()
    // A stop that came while the group was being checked wins.
    if (this.stopped) return
    this.running = true
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.running = false
    this.wake?.()
    await this.loop
  }

  private async run(): Promise<void> {
    let backoff = 100
    while (this.running) {
      let batch: LogEntry[] = []
      try {
        batch = await this.consumer.next()
        if (batch.length === 0) continue
        await this.writeBatch(batch)
        await this.consumer.ack(batch.map((e) => e.id))
        backoff = 100
        if (batch.length < (this.opts.fullBatch ?? 250)) await this.sleep(this.opts.lingerMs ?? 10)
      } catch (err) {
        this.stats.failures++
        this.stats.lastError = (err as Error).message
        this.log.warn({ err, entries: batch.length, retryInMs: backoff }, 'telemetry batch not stored; will retry')
        this.consumer.retryPending()
        // Redis lost the stream or the group (a restore without AOF): recreate it rather than fail forever.
        if (String((err as Error).message).includes('NOGROUP')) await this.consumer.ensureGroup().catch(() => undefined)
        await this.sleep(backoff)
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 5000)
      }
    }
  }

  /**
   * Store the usable entries first, then set aside the ones that can never be stored: setting aside needs a Redis
   * write, which a full Redis refuses, and the good entries must not wait for it (acking them is what frees Redis).
   */
  private async writeBatch(batch: LogEntry[]): Promise<void> {
    const refused: [LogEntry, string][] = []
    for (const e of batch) {
      if (e.unreadable !== undefined) refused.push([e, 'ingest entry is not valid JSON'])
      else if (e.message !== null && !looksLikeMessage(e.message)) refused.push([e, 'ingest entry is not a device message'])
    }
    await this.writeLive(batch.filter((e) => e.message !== null && looksLikeMessage(e.message)), refused)
    for (const [entry, reason] of refused) await this.deadLetter(entry, reason)
  }

  /** Write these entries; those InfluxDB refuses as bad data are isolated by halving and added to `refused`. */
  private async writeLive(live: LogEntry[], refused: [LogEntry, string][]): Promise<void> {
    if (live.length === 0) return
    const started = performance.now()
    try {
      const n = await this.store.write(live.map((e) => e.message!)).finally(() => observe(this.stats.writeSeconds, (performance.now() - started) / 1000))
      this.stats.written += n
      this.stats.batches++
    } catch (err) {
      if (!(err instanceof InfluxRejectedError)) throw err
      if (live.length === 1) {
        refused.push([live[0]!, err.message])
        return
      }
      const half = Math.ceil(live.length / 2)
      await this.writeLive(live.slice(0, half), refused)
      await this.writeLive(live.slice(half), refused)
    }
  }

  /**
   * Move an entry to the dead-letter stream and ack it. Should Redis refuse even that (full, with noeviction), the
   * whole entry goes to the error log instead and is acked all the same: one unstorable entry must not hold the log
   * and, with it, every device's next message.
   */
  private async deadLetter(entry: LogEntry, reason: string): Promise<void> {
    const content = entry.unreadable ?? JSON.stringify(entry.message)
    try {
      await this.redis.xadd(this.opts.deadLetterStream, '*', 'entry', entry.id, 'm', content, 'error', reason)
      this.stats.deadLettered++
      this.log.error({ entryId: entry.id, deviceId: entry.message?.deviceId, reason }, 'ingest entry cannot be stored; moved to the dead-letter stream')
    } catch (err) {
      this.log.error(
        { err, entryId: entry.id, deviceId: entry.message?.deviceId, reason, entry: content },
        'ingest entry cannot be stored and the dead-letter stream refused it; its content is in this log line'
      )
    }
    await this.consumer.ack([entry.id])
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (!this.running) return resolve()
      const t = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(t)
        resolve()
      }
    })
  }
}

const TYPES = new Set(['telemetry', 'event', 'status'])

/** Only the ingest log's append writes entries; anything else in the stream is set aside, not retried forever. */
function looksLikeMessage(m: IngestMessage): boolean {
  return typeof m === 'object' && typeof m.deviceId === 'string' && TYPES.has(m.type) && Array.isArray(m.items)
}
