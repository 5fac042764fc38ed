/**
 * Register values ↔ numbers. Pure, so the poller and the simulator share it and tests need no sockets.
 *
 * Modbus itself only defines 16-bit registers sent big-endian (Modbus Application Protocol v1.1b3 §4.2); how a
 * 32-bit value spans two registers is each vendor's choice. Name the bytes of the value A (most significant) to D:
 * ABCD is big-endian throughout, CDAB swaps the words (the common "little-endian word order"), BADC swaps the
 * bytes within each word, DCBA is fully little-endian. A 16-bit value uses the first half: AB or BA.
 */
import type { ModbusOrder, ModbusType, RegisterSpec } from '../../../schemas/device-profile.js'

/** Positions, in the registers' wire bytes, of A, B, C, D for each order. */
const LAYOUT: Record<ModbusOrder, readonly number[]> = {
  ABCD: [0, 1, 2, 3],
  CDAB: [2, 3, 0, 1],
  BADC: [1, 0, 3, 2],
  DCBA: [3, 2, 1, 0]
}

/** Put the value's bytes in ABCD order from the wire bytes (`registers` starts at the value's first register). */
function toBigEndian(registers: Buffer, offsetBytes: number, width: 2 | 4, order: ModbusOrder): Buffer {
  const out = Buffer.alloc(width)
  const layout = width === 4 ? LAYOUT[order] : order === 'ABCD' || order === 'CDAB' ? [0, 1] : [1, 0]
  for (let i = 0; i < width; i++) out[i] = registers[offsetBytes + layout[i]!]!
  return out
}

/** The raw (unscaled) value of a register value starting `offset` registers into `registers`. */
export function decodeRaw(registers: Buffer, offset: number, type: Exclude<ModbusType, 'bit'>, order: ModbusOrder = 'ABCD'): number {
  const width = type === 'u16' || type === 'i16' ? 2 : 4
  if (registers.length < offset * 2 + width) throw new RangeError(`${type} at register offset ${offset} runs past the ${registers.length / 2} registers read`)
  const b = toBigEndian(registers, offset * 2, width, order)
  switch (type) {
    case 'u16':
      return b.readUInt16BE(0)
    case 'i16':
      return b.readInt16BE(0)
    case 'u32':
      return b.readUInt32BE(0)
    case 'i32':
      return b.readInt32BE(0)
    case 'f32':
      return b.readFloatBE(0)
  }
}

/** Bit `offset` of a coil / discrete-input reply: packed LSB first, 8 per byte (§6.1). */
export function decodeBit(bits: Buffer, offset: number): number {
  const byte = bits[offset >> 3]
  if (byte === undefined) throw new RangeError(`bit ${offset} runs past the ${bits.length * 8} bits read`)
  return (byte >> (offset & 7)) & 1
}

/** The metric value: raw × scale + offset, rounded to drop float noise from the scale (1e-9 of the value). */
export function decodeValue(data: Buffer, offset: number, spec: RegisterSpec): number {
  const raw = spec.type === 'bit' ? decodeBit(data, offset) : decodeRaw(data, offset, spec.type, spec.order)
  const value = raw * (spec.scale ?? 1) + (spec.offset ?? 0)
  return Number.isFinite(value) ? Number(value.toPrecision(12)) : value
}

/** The registers (wire bytes) that hold `raw`: the inverse of {@link decodeRaw}, for simulators and tests. */
export function encodeRaw(raw: number, type: Exclude<ModbusType, 'bit'>, order: ModbusOrder = 'ABCD'): Buffer {
  const width = type === 'u16' || type === 'i16' ? 2 : 4
  const b = Buffer.alloc(width)
  if (type === 'u16') b.writeUInt16BE(raw)
  else if (type === 'i16') b.writeInt16BE(raw)
  else if (type === 'u32') b.writeUInt32BE(raw)
  else if (type === 'i32') b.writeInt32BE(raw)
  else b.writeFloatBE(raw)
  const layout = width === 4 ? LAYOUT[order] : order === 'ABCD' || order === 'CDAB' ? [0, 1] : [1, 0]
  const out = Buffer.alloc(width)
  for (let i = 0; i < width; i++) out[layout[i]!] = b[i]!
  return out
}

/** The raw register value a metric value is sent as (the inverse of the scale), clamped to the type's range. */
export function encodeValue(value: number, spec: RegisterSpec): Buffer | number {
  const raw = (value - (spec.offset ?? 0)) / (spec.scale ?? 1)
  if (spec.type === 'bit') return raw ? 1 : 0
  if (spec.type === 'f32') return encodeRaw(raw, 'f32', spec.order)
  const range = { u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff] }[spec.type]
  return encodeRaw(Math.min(range[1]!, Math.max(range[0]!, Math.round(raw))), spec.type, spec.order)
}
