/**
 * InfluxDB line protocol for ingest-log messages, written straight into one string per request: the telemetry
 * writer's hot path. It makes exactly the bytes `Point.toLineProtocol()` of @influxdata/influxdb-client makes for the
 * same reading (tags and fields sorted by key, empty tag values and field keys left out, the library's own escaping,
 * its number formats, and the same inputs refused), without a Point, its two maps and a BigInt per reading;
 * test/line-protocol.test.ts compares the two on tricky input.
 */
import { escape } from '@influxdata/influxdb-client'
import type { IngestMessage } from '../ingest/types.js'

export const MEASUREMENTS = { readings: 'readings', events: 'events', status: 'device_status', unitRisk: 'unit_risk' } as const

/** Lines made so far for one request body, separated by '\n'. */
export interface LineBatch {
  text: string
  lines: number
}

/**
 * A reading's timestamp in nanoseconds: the device's millisecond time plus a sub-millisecond offset, so two
 * readings of one device in the same millisecond do not overwrite each other, and writing the same reading twice
 * (a replayed log entry, a redelivery) lands on the same point: InfluxDB keeps one.
 */
export function nanos(ms: number, offset: number): string {
  // ms × 10^6 is beyond a double's exact integers; for the usual case (a positive integer ms, an offset below 10^6)
  // the decimal digits of ms followed by the offset's six are the same number, without a BigInt.
  if (Number.isSafeInteger(ms) && ms > 0 && Number.isInteger(offset) && offset >= 0 && offset < 1_000_000) {
    return `${ms}${String(offset).padStart(6, '0')}`
  }
  return (BigInt(ms) * 1_000_000n + BigInt(offset % 1_000_000)).toString()
}

/**
 * Sub-millisecond offset of an item without a seq: from the device's server-side message number `n` (given by the
 * ingest log, stored in the entry, so a replay reproduces it) and the item's place in the message. Kept apart from
 * seq offsets (below 500,000 ns), so two such items of one device with the same ts collide only ~1,000 messages apart.
 */
function numberedOffset(n: number, index: number): number {
  return 500_000 + ((n * 512 + index) % 500_000)
}

// The field formats of Point.floatField / intField / booleanField / stringField, refusing what they refuse.
function floatValue(name: string, value: unknown): string {
  const n = typeof value === 'number' ? value : parseFloat(value as string)
  if (!isFinite(n)) throw new Error(`invalid float value for field '${name}': ${String(value)}`)
  return String(n)
}

function intValue(name: string, value: unknown): string {
  const n = typeof value === 'number' ? value : parseInt(String(value))
  if (isNaN(n) || n <= -9223372036854776e3 || n >= 9223372036854776e3) throw new Error(`invalid integer value for field '${name}': '${String(value)}'!`)
  return `${Math.floor(n)}i`
}

function stringValue(value: unknown): string {
  return escape.quoted(typeof value === 'string' ? value : String(value))
}

/** `,key=value` as Point writes a tag: nothing for an empty value. */
function tag(key: string, value: unknown): string {
  return value ? `,${key}=${escape.tag(value as string)}` : ''
}

/** One message's fields, reused from line to line: no allocation per reading beyond the value strings. */
const fieldKeys: string[] = []
const fieldValues: string[] = []
let fieldCount = 0

function setField(key: string, value: string): void {
  // A later field of the same name replaces the earlier one, as in Point's field map.
  for (let i = 0; i < fieldCount; i++) {
    if (fieldKeys[i] === key) {
      fieldValues[i] = value
      return
    }
  }
  fieldKeys[fieldCount] = key
  fieldValues[fieldCount] = value
  fieldCount++
}

/** The fields sorted by key (insertion sort: a reading has a handful), '' when there is none to write. */
function takeFields(): string {
  for (let i = 1; i < fieldCount; i++) {
    const k = fieldKeys[i]!
    const v = fieldValues[i]!
    let j = i - 1
    while (j >= 0 && fieldKeys[j]! > k) {
      fieldKeys[j + 1] = fieldKeys[j]!
      fieldValues[j + 1] = fieldValues[j]!
      j--
    }
    fieldKeys[j + 1] = k
    fieldValues[j + 1] = v
  }
  let out = ''
  for (let i = 0; i < fieldCount; i++) {
    const k = fieldKeys[i]!
    if (!k) continue
    out += `${out.length > 0 ? ',' : ''}${escape.tag(k)}=${fieldValues[i]!}`
  }
  fieldCount = 0
  return out
}

/** A device's tags before and after the event `type` tag (keys sorted: device_id, kind, [type], unit_id). */
interface DeviceTags {
  unitId: unknown
  kind: unknown
  before: string
  after: string
}

/** Devices whose escaped tags are kept; beyond this the cache starts over (a miss only costs escaping again). */
const MAX_DEVICES = 10_000
const deviceTags = new Map<unknown, DeviceTags>()

function tagsOf(message: IngestMessage): DeviceTags {
  const cached = deviceTags.get(message.deviceId)
  if (cached && cached.unitId === message.unitId && cached.kind === message.kind) return cached
  if (deviceTags.size >= MAX_DEVICES) deviceTags.clear()
  const tags: DeviceTags = {
    unitId: message.unitId,
    kind: message.kind,
    before: tag('device_id', message.deviceId) + tag('kind', message.kind),
    after: tag('unit_id', message.unitId)
  }
  deviceTags.set(message.deviceId, tags)
  return tags
}

/**
 * Append the lines of one message to `batch`. Throws, having possibly appended some, for a message that cannot be
 * written (a field value Point would refuse); the caller then drops the whole batch.
 */
export function appendLines(batch: LineBatch, message: IngestMessage): void {
  const tags = tagsOf(message)
  const measurement = MEASUREMENTS[message.type === 'event' ? 'events' : message.type === 'status' ? 'status' : 'readings']
  const items = message.items
  fieldCount = 0
  for (let index = 0; index < items.length; index++) {
    const item = items[index]!
    const ts = item.ts ?? message.rx
    const seq = (item as { seq?: number }).seq
    const time = nanos(ts, seq === undefined ? numberedOffset(message.n ?? 0, index) : seq % 500_000)
    if (seq !== undefined) setField('seq', intValue('seq', seq))
    let typeTag = ''
    if (message.type === 'telemetry') {
      const values = (item as { values: Record<string, number> }).values
      for (const metric of Object.keys(values)) setField(metric, floatValue(metric, values[metric]))
    } else if (message.type === 'event') {
      const ev = item as { type: string; point?: string; text?: string }
      typeTag = tag('type', ev.type)
      setField('point', stringValue(ev.point ?? ''))
      setField('text', stringValue(ev.text ?? ''))
    } else {
      setField('online', (item as { status: string }).status === 'online' ? 'T' : 'F')
    }
    const fields = takeFields()
    // Point writes no line without a field.
    if (fields.length === 0) continue
    const line = `${measurement}${tags.before}${typeTag}${tags.after} ${fields} ${time}`
    batch.text = batch.lines === 0 ? line : `${batch.text}\n${line}`
    batch.lines++
  }
}
