/**
 * A member of one consumer group of the ingest log. It hands out batches and acks them once the caller has
 * stored them. Entries delivered but never acked (a crash, a failed write) come back: first this consumer's own
 * pending entries, then entries another consumer left idle too long are claimed.
 */
import type { Redis } from 'ioredis'
import type { IngestMessage } from './types.js'
import type { LogEntry } from './ingest-log.js'

export interface LogConsumerOptions {
  stream: string
  group: string
  /** Stable across restarts, so a restarted process finds its own pending entries at once. */
  consumer: string
  /** @defaultValue 1000 */
  batchSize?: number
  /** How long a read waits for new entries. @defaultValue 500 */
  blockMs?: number
  /** Entries another consumer holds longer than this are claimed. @defaultValue 60000 */
  claimIdleMs?: number
}

type StreamReply = [string, [string, string[] | null][]][] | null

export class LogConsumer {
  private pendingFirst = true
  /** Where the next read of this consumer's pending entries starts: each read goes on past the last one returned. */
  private pendingCursor = '0'
  private lastClaim = 0
  /** Where the next XAUTOCLAIM scan of the group's pending list starts: a dead consumer's backlog is taken in turns. */
  private claimCursor = '0-0'
  readonly group: string
  readonly stream: string

  constructor(
    /** A connection of its own: blocking reads hold it. */
    private readonly redis: Redis,
    private readonly opts: LogConsumerOptions
  ) {
    this.group = opts.group
    this.stream = opts.stream
  }

  async ensureGroup(): Promise<void> {
    // Look before creating: at its memory limit Redis refuses XGROUP CREATE even for a group that exists, and a
    // full Redis is exactly when the writer must get going again to drain it.
    const groups = (await this.redis.xinfo('GROUPS', this.opts.stream).catch(() => [])) as unknown[][]
    if (groups.some((g) => g[0] === 'name' && g[1] === this.opts.group)) return
    try {
      await this.redis.xgroup('CREATE', this.opts.stream, this.opts.group, '0', 'MKSTREAM')
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err
    }
  }

  /** The next batch: pending entries first (after a start or a failure), else new ones. May be empty. */
  async next(): Promise<LogEntry[]> {
    const count = this.opts.batchSize ?? 1000
    if (Date.now() - this.lastClaim > (this.opts.claimIdleMs ?? 60_000) / 2) {
      this.lastClaim = Date.now()
      const claimed = (await this.redis.xautoclaim(
        this.opts.stream,
        this.opts.group,
        this.opts.consumer,
        this.opts.claimIdleMs ?? 60_000,
        this.claimCursor,
        'COUNT',
        count,
        'JUSTID'
      )) as [string, string[]]
      this.claimCursor = claimed[0]
      if (claimed[1].length > 0) {
        this.pendingFirst = true
        this.pendingCursor = '0'
        // More may wait behind this page: scan on at the next call instead of half a claim period later.
        if (this.claimCursor !== '0-0') this.lastClaim = 0
      }
    }
    if (this.pendingFirst) {
      const pending = parse(
        (await this.redis.xreadgroup(
          'GROUP',
          this.opts.group,
          this.opts.consumer,
          'COUNT',
          count,
          'STREAMS',
          this.opts.stream,
          this.pendingCursor
        )) as StreamReply
      )
      if (pending.length > 0) {
        this.pendingCursor = pending[pending.length - 1]!.id
        return pending
      }
      this.pendingFirst = false
      this.pendingCursor = '0'
    }
    return parse(
      (await this.redis.xreadgroup(
        'GROUP',
        this.opts.group,
        this.opts.consumer,
        'COUNT',
        count,
        'BLOCK',
        this.opts.blockMs ?? 500,
        'STREAMS',
        this.opts.stream,
        '>'
      )) as StreamReply
    )
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.redis.xack(this.opts.stream, this.opts.group, ...ids)
  }

  /** Read the pending entries again on the next call (after a failed write). */
  retryPending(): void {
    this.pendingFirst = true
    this.pendingCursor = '0'
  }
}

function parse(reply: StreamReply): LogEntry[] {
  const entries = reply?.[0]?.[1] ?? []
  return entries.map(([id, fields]) => {
    // A pending entry already trimmed from the stream comes back with no fields.
    const raw = fields?.[1]
    if (!raw) return { id, message: null }
    try {
      return { id, message: JSON.parse(raw) as IngestMessage }
    } catch {
      // Not written by Firewatch's append: kept aside by the consumer rather than blocking the log forever.
      return { id, message: null, unreadable: raw }
    }
  })
}
