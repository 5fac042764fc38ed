/**
 * The ingest log: a Redis Stream every accepted device message is appended to *before* it is acknowledged.
 * Consumers (the InfluxDB writer, later the rule engine) read it as consumer groups and ack an entry only after
 * their own write succeeded, so a crash or an outage downstream loses nothing: the entry is read again.
 *
 * Redelivered duplicates (a device resending a message whose PUBACK it never saw) are dropped at append time by a
 * short per-device window of the items already seen. Beyond that window, storage of items with ts and seq is
 * idempotent anyway: a reading's InfluxDB timestamp is derived from its own ts and seq (store/influx.ts).
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { IngestItem, IngestMessage } from './types.js'

// Appends a batch of messages. For each: checks every item against the device's seen-window and appends the new
// ones as one stream entry, atomically (one script): a crash can never record an item as seen without it being in
// the log. When some item has no seq, the entry also gets `n`, the device's next server-side message number, which
// places such items in time (store/influx.ts). Messages of one device in one batch are handled in order.
// A batch runs once: its id key remembers the answer for two minutes, so a call the client sends again after a lost
// reply (ioredis resends unanswered commands on reconnect) returns the first answer instead of appending twice.
// Event messages (fire alarms among them) are also appended to the events stream, so the rule engine reads them there
// without waiting behind a backlog of readings; their entry in the main stream carries "p":1 to say so.
// KEYS[1] stream, KEYS[2] the batch's id key, KEYS[3] the events stream, then per message: its seen-window zset, its
// device's message counter.
// ARGV[1] now ms, ARGV[2] window ms, then per message: entry head (JSON up to and with a trailing comma), two flags
// ('1' to number the entry, '1' to copy it to the events stream), the items' dedup members and the items' JSON, each
// list joined by newlines (JSON.stringify never writes a raw newline); a member is '-' for an item that is not
// deduplicated.
// Returns per message the stream id, or '' when every item was a duplicate.
const APPEND_SCRIPT = `
local done = redis.call('GET', KEYS[2])
if done then
  local ids = {}
  for id in string.gmatch(done, '([^\\n]*)\\n') do ids[#ids + 1] = id end
  return ids
end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids, touched = {}, {}
for m = 1, (#KEYS - 3) / 2 do
  local seen, counter = KEYS[2 * m + 2], KEYS[2 * m + 3]
  local a = 3 + (m - 1) * 4
  local head, numbered, priority = ARGV[a], string.sub(ARGV[a + 1], 1, 1), string.sub(ARGV[a + 1], 2, 2)
  local items = {}
  for json in string.gmatch(ARGV[a + 3], '[^\\n]+') do items[#items + 1] = json end
  local added, n, i = {}, 0, 0
  for member in string.gmatch(ARGV[a + 2], '[^\\n]+') do
    i = i + 1
    if member == '-' then
      n = n + 1; added[n] = items[i]
    else
      touched[seen] = true
      if redis.call('ZADD', seen, 'NX', now, member) == 1 then
        n = n + 1; added[n] = items[i]
      end
    end
  end
  if n == 0 then
    ids[m] = ''
  else
    if numbered == '1' then head = head .. '"n":' .. redis.call('INCR', counter) .. ',' end
    local body = head .. '"items":[' .. table.concat(added, ',') .. ']}'
    ids[m] = redis.call('XADD', KEYS[1], '*', 'm', body)
    if priority == '1' then redis.call('XADD', KEYS[3], '*', 'm', body) end
  end
end
for seen in pairs(touched) do
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - window)
  redis.call('PEXPIRE', seen, window)
end
redis.call('SET', KEYS[2], table.concat(ids, '\\n') .. '\\n', 'PX', 120000)
return ids
`

/** Messages waiting for the next script call, with the callers waiting for their ids. */
interface Pending {
  message: IngestMessage
  resolve: (id: string | null) => void
  reject: (err: Error) => void
}

export interface IngestLogOptions {
  /** Key prefix (config `REDIS_PREFIX`). */
  prefix: string
  /** How long a (device, seq, ts) is remembered to drop redeliveries. @defaultValue 600000 (10 min) */
  dedupWindowMs?: number
  /** Most messages appended by one script call. @defaultValue 256 */
  maxBatch?: number
  /** Most items (readings, events) in one script call, which Redis runs without serving anything else. @defaultValue 2000 */
  maxBatchItems?: number
}

export interface LogEntry {
  id: string
  /** Null for an entry trimmed while pending, or one that is not valid JSON (then `unreadable` holds it). */
  message: IngestMessage | null
  unreadable?: string
}

export class IngestLog {
  readonly stream: string
  /** The events stream: a copy of every event message, for the rule engine to read ahead of readings. */
  readonly eventStream: string
  private readonly prefix: string
  private readonly windowMs: number
  private readonly maxBatch: number
  private readonly maxBatchItems: number
  private pending: Pending[] = []
  private pendingItems = 0
  /** Messages appended since start, from every transport (duplicates not counted). */
  appended = 0
  /** The same by kind of message. */
  readonly appendedByKind: Record<'telemetry' | 'events' | 'status', number> = { telemetry: 0, events: 0, status: 0 }

  constructor(
    private readonly redis: Redis,
    options: IngestLogOptions
  ) {
    this.prefix = options.prefix
    this.stream = `${options.prefix}ingest`
    this.eventStream = `${options.prefix}ingest:events`
    this.windowMs = options.dedupWindowMs ?? 600_000
    this.maxBatch = options.maxBatch ?? 256
    this.maxBatchItems = options.maxBatchItems ?? 2000
    redis.defineCommand('fwIngestAppend', { lua: APPEND_SCRIPT })
  }

  /**
   * Append a normalized message. Resolves once Redis has it (then, and only then, may the device be acknowledged).
   * Messages appended in the same turn of the event loop (the packets of one socket read, of many sockets under
   * load) go to Redis in one script call: one round trip and one script run instead of one each.
   * @returns the stream id, or null when every item was a duplicate.
   */
  append(message: IngestMessage): Promise<string | null> {
    return new Promise((resolve, reject) => {
      // A message that would take the batch past its item budget starts the next batch.
      if (this.pending.length > 0 && this.pendingItems + message.items.length > this.maxBatchItems) this.flush()
      this.pending.push({ message, resolve, reject })
      this.pendingItems += message.items.length
      if (this.pending.length >= this.maxBatch || this.pendingItems >= this.maxBatchItems) this.flush()
      else if (this.pending.length === 1) setImmediate(() => this.flush())
    })
  }

  private flush(): void {
    const batch = this.pending
    if (batch.length === 0) return
    this.pending = []
    this.pendingItems = 0
    try {
      const keys: string[] = [this.stream, `${this.prefix}batch:${randomUUID()}`, this.eventStream]
      const args: string[] = [String(Date.now()), String(this.windowMs)]
      for (const { message } of batch) {
        const { items, ...rest } = message
        const priority = message.type === 'event'
        const head = priority ? { ...rest, p: 1 } : rest
        keys.push(`${this.prefix}seen:${message.deviceId}:${message.type}`, `${this.prefix}n:${message.deviceId}`)
        let numbered = false
        const members: string[] = []
        const jsons: string[] = []
        for (const item of items as IngestItem[]) {
          const json = JSON.stringify(item)
          const seq = (item as { seq?: number }).seq
          if (seq === undefined) numbered = true
          members.push(dedupMember(seq, item.ts, json))
          jsons.push(json)
        }
        args.push(JSON.stringify(head).slice(0, -1) + ',', `${numbered ? '1' : '0'}${priority ? '1' : '0'}`, members.join('\n'), jsons.join('\n'))
      }
      const cmd = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<string[]>>).fwIngestAppend!
      cmd.call(this.redis, keys.length, ...keys, ...args).then(
        (ids) => {
          batch.forEach((p, i) => {
            p.resolve(ids[i] || null)
            if (ids[i]) this.appendedByKind[p.message.type === 'event' ? 'events' : p.message.type]++
          })
          this.appended += ids.filter(Boolean).length
        },
        (err: Error) => batch.forEach((p) => p.reject(err))
      )
    } catch (err) {
      // Whatever failed while building or sending the call fails every message of the batch: none is acknowledged.
      for (const p of batch) p.reject(err as Error)
    }
  }

  /** The number of entries in the stream (not yet trimmed). */
  length(): Promise<number> {
    return this.redis.xlen(this.stream)
  }

  /**
   * What a consumer group has not stored yet: entries never delivered to it (lag) plus entries delivered and not
   * acknowledged (pending). Null when Redis cannot tell the lag (entries deleted out of order).
   */
  async backlog(group: string): Promise<number | null> {
    const groups = (await this.redis.xinfo('GROUPS', this.stream).catch(() => [])) as unknown[][]
    const info = groups.map(toObject).find((g) => String(g.name) === group)
    if (!info) return null
    const lag = info.lag as number | null | undefined
    return lag === null || lag === undefined ? null : lag + Number(info.pending)
  }

  /**
   * Drop entries every consumer group has acknowledged. Entries still pending in any group, or not yet delivered
   * to it, are kept. Without groups nothing is trimmed.
   */
  async trim(): Promise<number> {
    return (await this.trimStream(this.stream)) + (await this.trimStream(this.eventStream))
  }

  private async trimStream(stream: string): Promise<number> {
    const groups = (await this.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][]
    if (groups.length === 0) return 0
    let floor: string | null = null
    for (const raw of groups) {
      const info = toObject(raw)
      const name = String(info.name)
      const pending = (await this.redis.xpending(stream, name)) as [number, string | null, string | null, unknown]
      const keep = pending[0] > 0 && pending[1] ? pending[1] : String(info['last-delivered-id'])
      if (floor === null || compareIds(keep, floor) < 0) floor = keep
    }
    if (floor === null || floor === '0-0') return 0
    return this.redis.xtrim(stream, 'MINID', floor)
  }
}

/**
 * An item with a seq and a device timestamp is a duplicate when both match one seen in the window. Without a device
 * timestamp it is a duplicate only when its whole content repeats too: a rebooted device counts its seq from 0
 * again, and not every client marks a resend with the DUP flag [MQTT-3.3.1-1] (mqtt.js does not). Without a seq
 * nothing tells a resend from a new reading, so such items are never dropped.
 */
function dedupMember(seq: number | undefined, ts: number | undefined, json: string): string {
  if (seq === undefined) return '-'
  if (ts !== undefined) return `${seq}:${ts}`
  return `${seq}:#${createHash('sha1').update(json).digest('base64url').slice(0, 16)}`
}

function toObject(flat: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (let i = 0; i < flat.length; i += 2) o[String(flat[i])] = flat[i + 1]
  return o
}

export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1
}
