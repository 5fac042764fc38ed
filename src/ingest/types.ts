/** What travels through the ingest log: one normalized device message, validated against the device's profile. */
import type { DeviceStatus } from '../../schemas/device-payloads.js'
import type { EventItem } from '../../schemas/device-payloads.js'

export type MessageType = 'telemetry' | 'event' | 'status'

export interface ReadingItem {
  /** Epoch milliseconds, as the device gave it; absent means the message's receive time `rx`. */
  ts?: number
  seq?: number
  values: Record<string, number>
}

export interface EventRecord extends Omit<EventItem, 'ts'> {
  /** Epoch milliseconds, as the device gave it; absent means the message's receive time `rx`. */
  ts?: number
}

export interface StatusRecord {
  ts: number
  status: DeviceStatus
}

interface Base {
  deviceId: string
  unitId: string
  /** The device's profile name (its kind). */
  kind: string
  /** Server receive time, epoch ms. */
  rx: number
  /** The device's server-side message number, set by the ingest log when an item has no seq. */
  n?: number
  /** Set by the ingest log on an event message it also appended to the events stream (the rule engine reads it there). */
  p?: 1
}

export type IngestMessage =
  | (Base & { type: 'telemetry'; items: ReadingItem[] })
  | (Base & { type: 'event'; items: EventRecord[] })
  | (Base & { type: 'status'; items: StatusRecord[] })

export type IngestItem = ReadingItem | EventRecord | StatusRecord

/** The device a connection authenticated as: what ingest needs to know about it. */
export interface DeviceIdentity {
  deviceId: string
  unitId: string
  profile: string
}

/**
 * Why a device message was refused. Each reason has its own counter (`/metrics`, `rejections` in logs).
 * Stable names: dashboards and alerts depend on them.
 */
export const REJECT_REASONS = [
  'bad_credentials',
  'unknown_device',
  'login_throttled',
  'acl_publish',
  'acl_subscribe',
  'payload_too_large',
  'frame_too_large',
  'invalid_json',
  'schema',
  'unknown_metric',
  'out_of_range',
  'event_not_in_profile',
  'ts_in_future',
  'ts_too_old',
  'unknown_topic',
  // GB/T 26875.3 (src/ingest/gb26875/): a frame that failed its checksum, end marker, length or command check (denied),
  // and an analog value of a type no metric is mapped to.
  'bad_frame',
  'unknown_analog_type'
] as const
export type RejectReason = (typeof REJECT_REASONS)[number]

export interface Rejection {
  reason: RejectReason
  detail: string
}
