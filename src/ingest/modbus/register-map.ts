/**
 * Register maps (the `modbus:` section of a device profile): checks that go beyond the schema, and the plan of
 * read requests a poll makes, adjacent registers of one table merged into one request.
 */
import type { DeviceProfile, ModbusFunction, ModbusType, RegisterSpec } from '../../../schemas/device-profile.js'

/**
 * Most items one read may ask for. Modbus Application Protocol v1.1b3 §6.3/§6.4: read holding/input registers,
 * quantity 1 to 125 (0x7D); §6.1/§6.2: read coils/discrete inputs, quantity 1 to 2000 (0x7D0).
 */
export const MAX_READ: Record<ModbusFunction, number> = {
  coils: 2000,
  discrete_inputs: 2000,
  holding_registers: 125,
  input_registers: 125
}

/** 16-bit registers a value occupies (a bit occupies one coil or discrete input). */
export const WIDTH: Record<ModbusType, number> = { bit: 1, u16: 1, i16: 1, u32: 2, i32: 2, f32: 2 }

const isBitTable = (f: ModbusFunction) => f === 'coils' || f === 'discrete_inputs'

/** One request of a poll, and the metrics it answers with their offset (in items) from `address`. */
export interface ReadBlock {
  function: ModbusFunction
  address: number
  count: number
  fields: { metric: string; offset: number; spec: RegisterSpec }[]
}

/**
 * What is wrong with a profile's register map, as a message naming the field, or null. Run at profile load, so a
 * bad map stops start-up instead of polling garbage.
 */
export function registerMapProblem(profile: DeviceProfile): string | null {
  const map = profile.modbus
  if (!map) return null
  if (!profile.protocols.includes('modbus')) return '/modbus is set but protocols does not include modbus'
  for (const type of ['fault', 'restore'] as const) {
    // A slave that stops answering is reported as a fault event and its return as a restore.
    if (!profile.events.includes(type)) return `/events must include ${type} for a profile with a modbus register map`
  }
  for (const [metric, spec] of Object.entries(map.registers)) {
    const where = `/modbus/registers/${metric}`
    const m = Object.hasOwn(profile.metrics, metric) ? profile.metrics[metric] : undefined
    if (!m) return `${where} is not a metric of the profile`
    if (spec.unit !== m.unit) return `${where}/unit ${spec.unit} is not the metric's unit ${m.unit}`
    if ((spec.type === 'bit') !== isBitTable(spec.function)) {
      return `${where}/type ${spec.type} cannot be read from ${spec.function} (bits come from coils and discrete inputs only)`
    }
    if (spec.order && spec.type === 'bit') return `${where}/order has no meaning for a bit`
    if (spec.address + WIDTH[spec.type] > 65536) return `${where}/address ${spec.address} runs past the last register 65535`
    if (spec.scale === 0) return `${where}/scale must not be 0`
    // YAML has .nan and .inf: a scale or offset like that would turn every reading into a non-number.
    for (const field of ['scale', 'offset'] as const) {
      const v = spec[field]
      if (v !== undefined && !Number.isFinite(v)) return `${where}/${field} must be a finite number, not ${v}`
    }
  }
  return null
}

/**
 * Merge the map into as few requests as possible: per table, values sorted by address, a value joins the current
 * request when it is adjacent to or overlaps it and the request stays within {@link MAX_READ}.
 */
export function planReads(registers: Record<string, RegisterSpec>): ReadBlock[] {
  const byTable = new Map<ModbusFunction, [string, RegisterSpec][]>()
  for (const entry of Object.entries(registers)) {
    const list = byTable.get(entry[1].function) ?? []
    list.push(entry)
    byTable.set(entry[1].function, list)
  }
  const blocks: ReadBlock[] = []
  for (const [fn, entries] of byTable) {
    entries.sort((a, b) => a[1].address - b[1].address)
    let block: ReadBlock | null = null
    for (const [metric, spec] of entries) {
      const end = spec.address + WIDTH[spec.type]
      if (block && spec.address <= block.address + block.count && end - block.address <= MAX_READ[fn]) {
        block.count = Math.max(block.count, end - block.address)
      } else {
        block = { function: fn, address: spec.address, count: WIDTH[spec.type], fields: [] }
        blocks.push(block)
      }
      block.fields.push({ metric, offset: spec.address - block.address, spec })
    }
  }
  return blocks
}
