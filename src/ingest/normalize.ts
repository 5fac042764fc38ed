/**
 * Parse and validate one device payload against the contract schema and the device's profile.
 * Pure: no I/O, so every transport (MQTT, Modbus, GB/T 26875.3) shares it and tests need no services.
 */
import {
  EventPayload,
  MAX_PAYLOAD_BYTES,
  StatusPayload,
  TelemetryPayload,
  type EventItem,
  type TelemetryItem
} from '../../schemas/device-payloads.js'
import type { DeviceProfile } from '../../schemas/device-profile.js'
import { compile, describeErrors } from '../validation.js'
import type { DeviceIdentity, IngestMessage, MessageType, Rejection } from './types.js'

const validators = {
  telemetry: compile(TelemetryPayload),
  event: compile(EventPayload),
  status: compile(StatusPayload)
}

/** A device clock this far ahead of ours is wrong, and its readings would sort after everything else. */
const MAX_CLOCK_AHEAD_MS = 24 * 3600 * 1000
/**
 * Older than this is a device clock that was reset (to 2000-01-01, say), not a reading from a buffer: stored as is
 * it would land outside every query of its time, and a clock stuck at one value makes new readings look like
 * duplicates of old ones.
 */
const MAX_AGE_MS = 366 * 24 * 3600 * 1000

/**
 * Items that are their whole payload as the device sent it: a single object whose ts (if any) was already epoch ms.
 * JSON.parse of those bytes gives the item exactly, so the ingest log may store the bytes instead of serializing the
 * item again (a copy and the garbage of one JSON.stringify per message). Weak: an item is forgotten with it.
 */
const asSent = new WeakSet<object>()
export const isAsSent = (item: object): boolean => asSent.has(item)

export type NormalizeResult = { ok: true; message: IngestMessage } | ({ ok: false } & Rejection)

function reject(reason: Rejection['reason'], detail: string): NormalizeResult {
  return { ok: false, reason, detail }
}


export function normalize(
  device: DeviceIdentity,
  profile: DeviceProfile,
  type: MessageType,
  payload: Buffer,
  rx: number
): NormalizeResult {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    return reject('payload_too_large', `${payload.length} bytes > ${MAX_PAYLOAD_BYTES}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return reject('invalid_json', (err as Error).message)
  }
  const validate = validators[type]
  if (!validate(doc)) return reject('schema', describeErrors(validate.errors))

  const base = { deviceId: device.deviceId, unitId: device.unitId, kind: profile.name, rx }
  if (type === 'status') {
    return { ok: true, message: { ...base, type, items: [{ ts: rx, status: doc as 'online' | 'offline' }] } }
  }

  const single = !Array.isArray(doc)
  const list = (single ? [doc] : doc) as (TelemetryItem | EventItem)[]
  let converted = false
  for (const [i, item] of list.entries()) {
    if (item.ts !== undefined) {
      if (typeof item.ts === 'string') converted = true
      const ts = typeof item.ts === 'number' ? item.ts : Date.parse(item.ts)
      // RFC 3339 allows a leap second (:60) that has no epoch value.
      if (Number.isNaN(ts)) return reject('schema', `item ${i}: ts ${String(item.ts)} is not a representable time`)
      if (ts > rx + MAX_CLOCK_AHEAD_MS) {
        return reject('ts_in_future', `item ${i}: ts ${new Date(ts).toISOString()} is ahead of the server clock`)
      }
      if (ts < rx - MAX_AGE_MS) {
        return reject('ts_too_old', `item ${i}: ts ${new Date(ts).toISOString()} is more than a year old`)
      }
      item.ts = ts
    }
    if (type === 'telemetry') {
      for (const [metric, value] of Object.entries((item as TelemetryItem).values)) {
        // Own properties only: "constructor" must not find Object.prototype's.
        const spec = Object.hasOwn(profile.metrics, metric) ? profile.metrics[metric] : undefined
        if (!spec) return reject('unknown_metric', `item ${i}: ${metric} is not a metric of profile ${profile.name}`)
        if (value < spec.min || value > spec.max) {
          return reject('out_of_range', `item ${i}: ${metric}=${value} outside the sensor range [${spec.min}, ${spec.max}]`)
        }
      }
    } else if (!profile.events.includes((item as EventItem).type)) {
      return reject('event_not_in_profile', `item ${i}: event ${(item as EventItem).type} is not raised by ${profile.name}`)
    }
  }
  if (single && !converted) asSent.add(list[0]!)
  return { ok: true, message: { ...base, type, items: list } as IngestMessage }
}
