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
import { ByteWriter } from './byte-writer.js'
import { isAsSent } from './normalize.js'
import type { IngestItem, IngestMessage, MessageType } from './types.js'

// Appends a batch of messages. For each: checks every item against the device's seen-window and appends the new
// ones as one stream entry, atomically (one script): a crash can never record an item as seen without it being in
// the log. When some item has no seq, the entry also gets `n`, the device's next server-side message number, which
// places such items in time (store/influx.ts). Messages of one device in one batch are handled in order.
// A batch runs once: its id key remembers the answer for two minutes, so a call the client sends again after a lost
// reply (ioredis resends unanswered commands on reconnect) returns the first answer instead of appending twice.
// Event messages (fire alarms among them) are also appended to the events stream, so the rule engine reads them there
// without waiting behind a backlog of readings; their entry in the main stream carries "p":1 to say so.
// KEYS[1] stream, KEYS[2] the batch's id key, KEYS[3] the events stream, then the batch's seen-window zsets and
// message counters, each once.
// ARGV[1] now ms, ARGV[2] window ms, ARGV[3] the entries' bodies back to back (each the whole entry as it is stored
// when every item is new and it needs no number), ARGV[4] the index, per message one line
// "<seen key#> <counter key# or 0> <numbered 0|1><event 0|1> <head bytes> <body bytes> <items>" and per item one line
// "<dedup member> <offset in the body> <bytes>"; a member is '-' for an item that is not deduplicated. ARGV[5] the
// key numbers of the seen-windows to trim in this call, ARGV[6] their expiry in ms.
// A window is trimmed (members older than the window dropped, expiry set to window + trim interval) at most once per
// trim interval, and always in a call that also added to it: between trims it holds members a little longer than the
// window (more redeliveries dropped, never fewer), and it lives at least the window past its last member.
// Two arguments for the whole batch instead of several per message: the client encodes and frames them once.
// Returns per message the stream id, or '' when every item was a duplicate, each followed by '\n': one string, which
// Redis sends and the client reads as one reply instead of one per message.
const APPEND_SCRIPT = `
local done = redis.call('GET', KEYS[2])
if done then return done end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local data, index = ARGV[3], ARGV[4]
local find, sub = string.find, string.sub
local ids = {}
local pos, off, m = 1, 1, 0
while pos <= #index do
  m = m + 1
  local _, e, s, c, numbered, priority, hl, bl, ni = find(index, '^(%d+) (%d+) (%d)(%d) (%d+) (%d+) (%d+)\\n', pos)
  pos = e + 1
  local seen = KEYS[tonumber(s)]
  hl, bl, ni = tonumber(hl), tonumber(bl), tonumber(ni)
  local starts, lens, n = {}, {}, 0
  for i = 1, ni do
    local _, e2, member, st, ln = find(index, '^(%S+) (%d+) (%d+)\\n', pos)
    pos = e2 + 1
    local new = true
    if member ~= '-' then
      new = redis.call('ZADD', seen, 'NX', now, member) == 1
    end
    if new then n = n + 1; starts[n] = st; lens[n] = ln end
  end
  if n == 0 then
    ids[m] = ''
  else
    local body
    if n < ni then
      local items = {}
      for k = 1, n do
        local st = off + tonumber(starts[k])
        items[k] = sub(data, st, st + tonumber(lens[k]) - 1)
      end
      body = sub(data, off, off + hl - 1) .. '"items":[' .. table.concat(items, ',') .. ']}'
    else
      body = sub(data, off, off + bl - 1)
    end
    if numbered == '1' then
      body = sub(body, 1, hl) .. '"n":' .. redis.call('INCR', KEYS[tonumber(c)]) .. ',' .. sub(body, hl + 1)
    end
    ids[m] = redis.call('XADD', KEYS[1], '*', 'm', body)
    if priority == '1' then redis.call('XADD', KEYS[3], '*', 'm', body) end
  end
  off = off + bl
end
for k in string.gmatch(ARGV[5], '%d+') do
  local seen = KEYS[tonumber(k)]
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - window)
  redis.call('PEXPIRE', seen, ARGV[6])
end
local answer = table.concat(ids, '\\n') .. '\\n'
redis.call('SET', KEYS[2], answer, 'PX', 120000)
return answer
`

/** A device's entry head up to "rx" and its keys; see IngestLog.partsOf. */
interface DeviceParts {
  unitId: string
  kind: string
  head: Buffer
  seen: Record<MessageType, string>
  counter: string
  /** When each seen-window was last trimmed by a call from here (0: never). */
  trimmedAt: Record<MessageType, number>
}

/** Devices whose parts are kept; beyond this the cache starts over (a miss only costs building them again). */
const MAX_DEVICE_PARTS = 10_000

/** Messages waiting for the next script call, with the callers waiting for their ids. */
interface Pending {
  message: IngestMessage
  /** The payload's own bytes, for a message whose single item normalize() found sent as is. */
  payload: Buffer | undefined
  done: AppendCallback
}

/** Called once Redis has the message (id, or null when every item was a duplicate), or with the error. */
export type AppendCallback = (err: Error | null, id: string | null) => void

export interface IngestLogOptions {
  /** Key prefix (config `REDIS_PREFIX`). */
  prefix: string
  /** How long a (device, seq, ts) is remembered to drop redeliveries. @defaultValue 600000 (10 min) */
  dedupWindowMs?: number
  /** Most messages appended by one script call. @defaultValue 256 */
  maxBatch?: number
  /** Most items (readings, events) in one script call, which Redis runs without serving anything else. @defaultValue 2000 */
  maxBatchItems?: number
  /**
   * Script calls waiting for their reply before the next turn's messages are sent: the messages arriving meanwhile
   * wait and go together when a reply comes in. Idle, a message goes at once; under load the batches grow instead of
   * the calls. (A full batch goes at once regardless.) @defaultValue 1
   */
  maxCallsInFlight?: number
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
  private readonly trimEveryMs: number
  private readonly maxBatch: number
  private readonly maxBatchItems: number
  private pending: Pending[] = []
  private pendingItems = 0
  private readonly devices = new Map<string, DeviceParts>()
  private readonly maxCallsInFlight: number
  private callsInFlight = 0
  /** Bytes of the previous call's bodies: the next call's first guess. */
  private lastBatchBytes = 0
  /** Messages appended since start, from every transport (duplicates not counted). */
  appended = 0
  /** The same by kind of message. */
  readonly appendedByKind: Record<'telemetry' | 'events' | 'status', number> = { telemetry: 0, events: 0, status: 0 }
  /** Script calls since start (appended ÷ calls: the mean batch). */
  calls = 0

  constructor(
    private readonly redis: Redis,
    options: IngestLogOptions
  ) {
    this.prefix = options.prefix
    this.stream = `${options.prefix}ingest`
    this.eventStream = `${options.prefix}ingest:events`
    this.windowMs = options.dedupWindowMs ?? 600_000
    // A tenth of the window: a device's window is trimmed at most once a minute by default.
    this.trimEveryMs = Math.max(1, Math.round(this.windowMs / 10))
    this.maxBatch = options.maxBatch ?? 256
    this.maxBatchItems = options.maxBatchItems ?? 2000
    this.maxCallsInFlight = options.maxCallsInFlight ?? 1
    redis.defineCommand('fwIngestAppend', { lua: APPEND_SCRIPT })
  }

  /**
   * Append a normalized message. Resolves once Redis has it (then, and only then, may the device be acknowledged).
   * Messages appended in the same turn of the event loop (the packets of one socket read, of many sockets under
   * load) go to Redis in one script call: one round trip and one script run instead of one each.
   * @param payload the device's payload the message was normalized from, passed right after normalize() accepted
   *   it: when its single item was sent as is, the entry holds these bytes instead of the item serialized again.
   * @returns the stream id, or null when every item was a duplicate.
   */
  append(message: IngestMessage, payload?: Buffer): Promise<string | null> {
    return new Promise((resolve, reject) => this.appendThen(message, payload, (err, id) => (err ? reject(err) : resolve(id))))
  }

  /** {@link append} with a callback: the broker's path, one promise and its reactions fewer per message. */
  appendThen(message: IngestMessage, payload: Buffer | undefined, done: AppendCallback): void {
    // A message that would take the batch past its item budget starts the next batch.
    if (this.pending.length > 0 && this.pendingItems + message.items.length > this.maxBatchItems) this.flush()
    const asSent = payload !== undefined && message.items.length === 1 && isAsSent(message.items[0]!)
    this.pending.push({ message, payload: asSent ? payload : undefined, done })
    this.pendingItems += message.items.length
    if (this.pending.length >= this.maxBatch || this.pendingItems >= this.maxBatchItems) this.flush()
    else if (this.pending.length === 1 && this.callsInFlight < this.maxCallsInFlight) setImmediate(this.flushLater)
  }

  /** At the end of the turn; while calls are in flight, the reply of one sends what waits. */
  private readonly flushLater = () => {
    if (this.callsInFlight < this.maxCallsInFlight) this.flush()
  }

  private callDone(): void {
    this.callsInFlight--
    if (this.pending.length > 0 && this.callsInFlight < this.maxCallsInFlight) this.flush()
  }

  private flush(): void {
    const batch = this.pending
    if (batch.length === 0) return
    this.pending = []
    this.pendingItems = 0
    try {
      const keys: string[] = [this.stream, `${this.prefix}batch:${randomUUID()}`, this.eventStream]
      const keyIndex = new Map<string, number>()
      const key = (name: string) => {
        let i = keyIndex.get(name)
        if (i === undefined) keyIndex.set(name, (i = keys.push(name)))
        return i
      }
      const data = new ByteWriter(this.lastBatchBytes)
      let index = ''
      const now = Date.now()
      const trims = new Set<number>()
      const trimmed: [DeviceParts, MessageType][] = []
      for (const { message, payload } of batch) {
        const priority = message.type === 'event'
        const start = data.length
        const device = this.partsOf(message)
        data.bytes(device.head)
        data.string(`${message.rx},"type":"${message.type}",${priority ? '"p":1,' : ''}`)
        const headBytes = data.length - start
        data.string('"items":[')
        const items = message.items as IngestItem[]
        let numbered = false
        let deduplicated = false
        let lines = ''
        for (let i = 0; i < items.length; i++) {
          const item = items[i]!
          if (i > 0) data.string(',')
          const at = data.length - start
          const seq = (item as { seq?: number }).seq
          let member = '-'
          let json: string | undefined
          if (seq === undefined) numbered = true
          else {
            deduplicated = true
            member = item.ts !== undefined ? `${seq}:${item.ts}` : contentMember(seq, (json = JSON.stringify(item)))
          }
          // The content hash is of the serialized item, so such an item is stored serialized as before.
          // A single item that is the whole payload, unchanged by validation, is stored as the device's own bytes.
          if (payload && json === undefined) data.bytes(payload)
          else data.string(json ?? JSON.stringify(item))
          lines += `${member} ${at} ${data.length - start - at}\n`
        }
        data.string(']}')
        const seen = key(device.seen[message.type])
        const counter = numbered ? key(device.counter) : 0
        if (deduplicated && now - device.trimmedAt[message.type] >= this.trimEveryMs) {
          device.trimmedAt[message.type] = now
          trimmed.push([device, message.type])
          trims.add(seen)
        }
        index += `${seen} ${counter} ${numbered ? 1 : 0}${priority ? 1 : 0} ${headBytes} ${data.length - start} ${items.length}\n${lines}`
      }
      this.lastBatchBytes = data.length
      const cmd = (this.redis as unknown as Record<string, (...a: (string | number | Buffer)[]) => Promise<string>>).fwIngestAppend!
      const expiry = String(this.windowMs + this.trimEveryMs)
      const call = cmd.call(this.redis, keys.length, ...keys, String(now), String(this.windowMs), data.bytesWritten(), index, [...trims].join(' '), expiry)
      this.callsInFlight++
      this.calls++
      call.then(
        (answer) => {
          const ids = answer.split('\n')
          // A callback that throws must not keep the rest of the batch from being acknowledged.
          let thrown: unknown
          for (let i = 0; i < batch.length; i++) {
            const id = ids[i] || null
            const type = batch[i]!.message.type
            if (id) {
              this.appended++
              this.appendedByKind[type === 'event' ? 'events' : type]++
            }
            try {
              batch[i]!.done(null, id)
            } catch (err) {
              thrown ??= err
            }
          }
          this.callDone()
          if (thrown !== undefined) throw thrown
        },
        (err: Error) => {
          // The call may not have trimmed: the next one that adds to these windows does.
          for (const [device, type] of trimmed) if (device.trimmedAt[type] === now) device.trimmedAt[type] = 0
          batch.forEach((p) => p.done(err, null))
          this.callDone()
        }
      )
    } catch (err) {
      // Whatever failed while building or sending the call fails every message of the batch: none is acknowledged.
      for (const p of batch) p.done(err as Error, null)
    }
  }

  /** What every entry and call of a device repeats, made once per device (while its unit and kind stay). */
  private partsOf(message: IngestMessage): DeviceParts {
    const known = this.devices.get(message.deviceId)
    if (known && known.unitId === message.unitId && known.kind === message.kind) return known
    if (this.devices.size >= MAX_DEVICE_PARTS) this.devices.clear()
    const id = message.deviceId
    const parts: DeviceParts = {
      unitId: message.unitId,
      kind: message.kind,
      head: Buffer.from(`{"deviceId":${JSON.stringify(id)},"unitId":${JSON.stringify(message.unitId)},"kind":${JSON.stringify(message.kind)},"rx":`),
      seen: { telemetry: `${this.prefix}seen:${id}:telemetry`, event: `${this.prefix}seen:${id}:event`, status: `${this.prefix}seen:${id}:status` },
      counter: `${this.prefix}n:${id}`,
      trimmedAt: { telemetry: 0, event: 0, status: 0 }
    }
    this.devices.set(id, parts)
    return parts
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
 * An item with a seq and a device timestamp is a duplicate when both match one seen in the window (member
 * `seq:ts`). Without a device timestamp it is a duplicate only when its whole content repeats too: a rebooted device
 * counts its seq from 0 again, and not every client marks a resend with the DUP flag [MQTT-3.3.1-1] (mqtt.js does
 * not). Without a seq nothing tells a resend from a new reading, so such items are never dropped (member '-').
 */
function contentMember(seq: number, json: string): string {
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
