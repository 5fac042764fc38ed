/** Device profiles (devices/*.yaml): the metrics a kind of device reports, their units and physical ranges. */
import { Type, type Static } from '@sinclair/typebox'
import { EVENT_TYPES } from './device-payloads.js'

export const DEVICE_KINDS = ['alarm_panel', 'uitd', 'smoke_detector', 'sprinkler_pressure', 'water_level'] as const
export type DeviceKind = (typeof DEVICE_KINDS)[number]

export const MetricSpec = Type.Object(
  {
    unit: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    /** Physical range of the sensor: a value outside it is a broken reading and is rejected. */
    min: Type.Number(),
    max: Type.Number(),
    /** Safe operating range: a value outside it is a valid reading the rule engine judges. */
    safe: Type.Optional(
      Type.Object({ min: Type.Optional(Type.Number()), max: Type.Optional(Type.Number()) }, { additionalProperties: false })
    )
  },
  { additionalProperties: false }
)
export type MetricSpec = Static<typeof MetricSpec>

/** Modbus data model tables (Modbus Application Protocol v1.1b3 §4.3) and the function code that reads each. */
export const MODBUS_FUNCTIONS = ['coils', 'discrete_inputs', 'holding_registers', 'input_registers'] as const
export type ModbusFunction = (typeof MODBUS_FUNCTIONS)[number]
export const MODBUS_TYPES = ['u16', 'i16', 'u32', 'i32', 'f32', 'bit'] as const
export type ModbusType = (typeof MODBUS_TYPES)[number]
/** Byte order of a value, bytes A (most significant) to D: ABCD big-endian (the protocol's own, §4.2), CDAB word-swapped. */
export const MODBUS_ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const
export type ModbusOrder = (typeof MODBUS_ORDERS)[number]

export const RegisterSpec = Type.Object(
  {
    function: Type.Union(MODBUS_FUNCTIONS.map((f) => Type.Literal(f))),
    /** Zero-based protocol address (register 40001 of a vendor sheet is holding_registers address 0). */
    address: Type.Integer({ minimum: 0, maximum: 65535 }),
    type: Type.Union(MODBUS_TYPES.map((t) => Type.Literal(t))),
    /** Word and byte order; 16-bit values use only the byte order (AB or BA). Default ABCD. */
    order: Type.Optional(Type.Union(MODBUS_ORDERS.map((o) => Type.Literal(o)))),
    /** value = raw × scale + offset. */
    scale: Type.Optional(Type.Number()),
    offset: Type.Optional(Type.Number()),
    /** The unit the scaled value is in; must be the metric's unit. */
    unit: Type.String({ minLength: 1 })
  },
  { additionalProperties: false }
)
export type RegisterSpec = Static<typeof RegisterSpec>

/** How a Modbus poller reads this kind of device: metric → register (docs/MODBUS.md). */
export const ModbusMap = Type.Object(
  { registers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), RegisterSpec, { minProperties: 1 }) },
  { additionalProperties: false }
)
export type ModbusMap = Static<typeof ModbusMap>

export const DeviceProfile = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
    /** The class of device; several profiles (vendors, register maps) may share one kind. */
    kind: Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k))),
    description: Type.String(),
    /** Protocols a device of this kind may use. */
    protocols: Type.Array(Type.Union([Type.Literal('mqtt'), Type.Literal('modbus'), Type.Literal('gb26875')]), {
      minItems: 1
    }),
    /** Longest silence before the device counts as lost (GB 50440: patrol period ≤ 2 h). */
    patrolPeriodS: Type.Integer({ minimum: 10, maximum: 7200 }),
    metrics: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), MetricSpec),
    /** Event types this kind can raise; empty means the kind sends no events. */
    events: Type.Array(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)))),
    /** Register map, for profiles whose protocols include modbus. */
    modbus: Type.Optional(ModbusMap)
  },
  { additionalProperties: false }
)
export type DeviceProfile = Static<typeof DeviceProfile>
