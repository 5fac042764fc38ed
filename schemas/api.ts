/** HTTP API bodies and replies. Fastify validates with these and @fastify/swagger publishes them at /docs. */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { DEVICE_KINDS } from './device-profile.js'

/** Ids appear in MQTT topics and URLs: no '/', '+', '#' or spaces. */
export const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'letters, digits, _ . -' })
const Timestamp = Type.String({ format: 'date-time' })

export const ErrorReply = Type.Object({
  code: Type.String(),
  message: Type.String(),
  field: Type.Optional(Type.String())
})
export type ErrorReply = Static<typeof ErrorReply>

export const Page = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
})

export const List = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), total: Type.Integer() })

/** `?cursor=`: the `nextCursor` of the previous page (src/api/cursor.ts). */
export const Cursor = Type.String({
  minLength: 1,
  maxLength: 200,
  description: "opaque: the previous page's `nextCursor`, unchanged; the page starts right after that page's last item"
})

/** A page of a keyset-paged list: `nextCursor` is null on the last page. */
export const CursorList = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    total: Type.Integer({ description: 'items in the whole list, not only this page' }),
    nextCursor: Type.Union([Cursor, Type.Null()], { description: 'pass as `cursor` for the next page; null: this is the last page' })
  })

export const JurisdictionLevel = Type.Union([Type.Literal('city'), Type.Literal('district'), Type.Literal('street')])

export const JurisdictionCreate = Type.Object(
  {
    id: Type.Optional(Id),
    parentId: Type.Optional(Id),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    level: JurisdictionLevel
  },
  { additionalProperties: false }
)
export type JurisdictionCreate = Static<typeof JurisdictionCreate>

export const Jurisdiction = Type.Object({
  id: Id,
  parentId: Type.Union([Id, Type.Null()]),
  name: Type.String(),
  level: JurisdictionLevel,
  path: Type.Array(Id, { description: 'ids from the city down to this jurisdiction' }),
  createdAt: Timestamp
})
export type Jurisdiction = Static<typeof Jurisdiction>

export const UnitCategory = Type.Union([Type.Literal('high_risk'), Type.Literal('key'), Type.Literal('general')])

export const UnitCreate = Type.Object(
  {
    id: Type.Optional(Id),
    jurisdictionId: Id,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    address: Type.String({ minLength: 1, maxLength: 500 }),
    category: UnitCategory,
    latitude: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
    longitude: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
    contactName: Type.String({ minLength: 1, maxLength: 100, description: 'person responsible for fire safety' }),
    contactPhone: Type.String({ pattern: '^[0-9+() -]{3,32}$' })
  },
  { additionalProperties: false }
)
export type UnitCreate = Static<typeof UnitCreate>

export const Unit = Type.Object({
  id: Id,
  jurisdictionId: Id,
  name: Type.String(),
  address: Type.String(),
  category: UnitCategory,
  latitude: Type.Union([Type.Number(), Type.Null()]),
  longitude: Type.Union([Type.Number(), Type.Null()]),
  contactName: Type.String(),
  contactPhone: Type.String(),
  createdAt: Timestamp
})
export type Unit = Static<typeof Unit>

export const Protocol = Type.Union([Type.Literal('mqtt'), Type.Literal('modbus'), Type.Literal('gb26875')])
export const DeviceKind = Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k)))

export const ModbusTarget = Type.Object(
  {
    host: Type.Union([Type.String({ format: 'ipv4' }), Type.String({ format: 'hostname', pattern: '[A-Za-z]' })], {
      description: 'gateway host name or IPv4 address'
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502, description: 'Modbus TCP port (502 is registered for it)' }),
    // Modbus over serial line v1.02 §2.2: slave addresses 1–247; 0 is broadcast (never answered). Direct TCP devices often use 255.
    unitId: Type.Integer({ minimum: 1, maximum: 255, description: 'unit id (slave address) behind the gateway' }),
    pollIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000 })
  },
  { additionalProperties: false }
)
export type ModbusTarget = Static<typeof ModbusTarget>

export const Gb26875Target = Type.Object(
  {
    address: Type.String({
      pattern: '^[0-9A-Fa-f]{12}$',
      description:
        'the 6-byte source address of its GB/T 26875.3 frames, as 12 hex digits in wire order (stored lowercase); ' +
        'the protocol has no credentials, so this address is the identity'
    })
  },
  { additionalProperties: false }
)
export type Gb26875Target = Static<typeof Gb26875Target>

export const DeviceCreate = Type.Object(
  {
    id: Type.Optional(Id),
    unitId: Id,
    kind: DeviceKind,
    profile: Type.Optional(Type.String({ description: 'device profile; defaults to the profile named like the kind' })),
    protocol: Type.Optional(Protocol),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    /** Where to poll it: required for protocol modbus, refused otherwise. */
    modbus: Type.Optional(ModbusTarget),
    /** Its UITD address: required for protocol gb26875, refused otherwise. */
    gb26875: Type.Optional(Gb26875Target)
  },
  { additionalProperties: false }
)
export type DeviceCreate = Static<typeof DeviceCreate>

export const Device = Type.Object({
  id: Id,
  unitId: Id,
  name: Type.String(),
  kind: DeviceKind,
  protocol: Protocol,
  profile: Type.String(),
  createdAt: Timestamp,
  lastSeenAt: Type.Union([Timestamp, Type.Null()]),
  online: Type.Boolean(),
  testModeUntil: Type.Union([Timestamp, Type.Null()], {
    description: 'while the device is in test mode (it raises test alerts only), when test mode ends; null otherwise'
  }),
  modbus: Type.Optional(ModbusTarget),
  gb26875: Type.Optional(Gb26875Target)
})
export type Device = Static<typeof Device>

export const DeviceCreated = Type.Intersect([
  Device,
  Type.Object({
    secret: Type.Union([Type.String(), Type.Null()], {
      description: 'MQTT password; shown only in this reply, stored hashed. Null for devices that do not log in.'
    })
  })
])

export const ReadingsQuery = Type.Object({
  metric: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'one metric; all when absent' })),
  from: Type.Optional(Timestamp),
  to: Type.Optional(Timestamp),
  every: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}(s|m|h|d)$', description: 'mean per interval, e.g. 1m' })),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000, description: 'the newest points of the range, oldest first' })
})
export type ReadingsQuery = Static<typeof ReadingsQuery>

export const Readings = Type.Object({
  deviceId: Id,
  from: Timestamp,
  to: Timestamp,
  every: Type.Union([Type.String(), Type.Null()]),
  points: Type.Array(
    Type.Object({ ts: Type.Integer({ description: 'epoch ms' }), values: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()])) })
  )
})

export const EventsQuery = Type.Object({
  type: Type.Optional(Type.String({ pattern: '^[a-z_]{1,32}$' })),
  from: Type.Optional(Timestamp),
  to: Type.Optional(Timestamp),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000, description: 'the newest events of the range, oldest first' })
})
export type EventsQuery = Static<typeof EventsQuery>

export const Events = Type.Object({
  deviceId: Id,
  from: Timestamp,
  to: Timestamp,
  events: Type.Array(
    Type.Object({
      ts: Type.Integer({ description: 'epoch ms' }),
      type: Type.String(),
      point: Type.String(),
      text: Type.String(),
      seq: Type.Union([Type.Integer(), Type.Null()])
    })
  )
})

export const IdParams = Type.Object({ id: Id })
