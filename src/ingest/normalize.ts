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
 * The item of the last message normalize() accepted when it is its whole payload as the device sent it: a single
 * object whose ts (if any) was already epoch ms. JSON.parse of those bytes gives the item exactly, so the ingest log
 * may store the bytes instead of serializing the item again. One slot, checked by identity right after normalize():
 * an item normalized earlier no longer matches, and is only serialized again.
 */
let lastAsSent: object | null = null
export const isAsSent = (item: object): boolean => item === lastAsSent

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

  if (type === 'status') {
    const items = [{ ts: rx, status: doc as 'online' | 'offline' }]
    return { ok: true, message: { deviceId: device.deviceId, unitId: device.unitId, kind: profile.name, rx, type, items } }
  }

  const single = !Array.isArray(doc)
  const list = (single ? [doc] : doc) as (TelemetryItem | EventItem)[]
  let converted = false
  for (let i = 0; i < list.length; i++) {
    const item = list[i]!
    if (item.ts !== undefined) {
      let ts = item.ts as number
      if (typeof item.ts === 'string') {
        converted = true
        ts = Date.parse(item.ts)
        // RFC 3339 allows a leap second (:60) that has no epoch value.
        if (Number.isNaN(ts)) return reject('schema', `item ${i}: ts ${item.ts} is not a representable time`)
        item.ts = ts
      }
      if (ts > rx + MAX_CLOCK_AHEAD_MS) {
        return reject('ts_in_future', `item ${i}: ts ${new Date(ts).toISOString()} is ahead of the server clock`)
      }
      if (ts < rx - MAX_AGE_MS) {
        return reject('ts_too_old', `item ${i}: ts ${new Date(ts).toISOString()} is more than a year old`)
      }
    }
    if (type === 'telemetry') {
      const values = (item as TelemetryItem).values
      for (const metric of Object.keys(values)) {
        // Own properties only: "constructor" must not find Object.prototype's.
        const spec = Object.hasOwn(profile.metrics, metric) ? profile.metrics[metric] : undefined
        if (!spec) return reject('unknown_metric', `item ${i}: ${metric} is not a metric of profile ${profile.name}`)
        const value = values[metric]!
        if (value < spec.min || value > spec.max) {
          return reject('out_of_range', `item ${i}: ${metric}=${value} outside the sensor range [${spec.min}, ${spec.max}]`)
        }
      }
    } else if (!profile.events.includes((item as EventItem).type)) {
      return reject('event_not_in_profile', `item ${i}: event ${(item as EventItem).type} is not raised by ${profile.name}`)
    }
  }
  lastAsSent = single && !converted ? list[0]! : null
  const message = { deviceId: device.deviceId, unitId: device.unitId, kind: profile.name, rx, type, items: list }
  return { ok: true, message: message as IngestMessage }
}
