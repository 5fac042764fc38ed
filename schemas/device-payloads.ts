/**
 * Device contract v1 payloads (docs/PROTOCOL.md). Single source of truth: the ingest validator, the TypeScript types
 * and the documentation all come from these schemas. Metric names and ranges are checked against the device's
 * profile after this structural check.
 */
import { Type, type Static } from '@sinclair/typebox'

/** The contract caps a payload at 16 KiB and an array at 500 items. */
export const MAX_PAYLOAD_BYTES = 16 * 1024
export const MAX_ITEMS = 500

export const EVENT_TYPES = [
  'fire',
  'supervisory',
  'fault',
  'isolate',
  'start',
  'feedback',
  'power_fault',
  'tamper',
  'low_battery',
  'test',
  'restore',
  'reset'
] as const

/** Epoch milliseconds or an RFC 3339 date-time; absent means "server receive time". */
export const Timestamp = Type.Union([
  Type.Integer({ minimum: 0, maximum: 8_640_000_000_000 }),
  Type.String({ format: 'date-time' })
])

/** Per-device counter, used to drop redelivered duplicates. */
export const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

export const TelemetryItem = Type.Object(
  {
    ts: Type.Optional(Timestamp),
    seq: Type.Optional(Seq),
    values: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), Type.Number(), { minProperties: 1 })
  },
  { additionalProperties: false }
)
export type TelemetryItem = Static<typeof TelemetryItem>

/** Printable text: no C0 control characters, no DEL. */
const NO_CONTROL = '^[^\\u0000-\\u001F\\u007F]*$'

export const EventItem = Type.Object(
  {
    ts: Type.Optional(Timestamp),
    seq: Type.Optional(Seq),
    type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
    // No control characters: PostgreSQL cannot store NUL, and nothing a panel means needs them.
    point: Type.Optional(Type.String({ maxLength: 64, pattern: NO_CONTROL })),
    text: Type.Optional(Type.String({ maxLength: 256, pattern: NO_CONTROL }))
  },
  { additionalProperties: false }
)
export type EventItem = Static<typeof EventItem>

export const TelemetryPayload = Type.Union([
  TelemetryItem,
  Type.Array(TelemetryItem, { minItems: 1, maxItems: MAX_ITEMS })
])
export const EventPayload = Type.Union([EventItem, Type.Array(EventItem, { minItems: 1, maxItems: MAX_ITEMS })])
export const StatusPayload = Type.Union([Type.Literal('online'), Type.Literal('offline')])
export type DeviceStatus = Static<typeof StatusPayload>
export type EventType = (typeof EVENT_TYPES)[number]
