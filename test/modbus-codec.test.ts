import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { encodeRead, readReply, takeFrames } from '../src/ingest/modbus/mbap.js'
import { decodeBit, decodeRaw, decodeValue, encodeRaw, planReads, MAX_READ } from '../src/ingest/modbus/index.js'
import { parseProfile } from '../src/ingest/profiles.js'
import type { RegisterSpec } from '../schemas/device-profile.js'

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex')

// Known vectors: the value's bytes A B C D as they appear on the wire for each order.
const VECTORS = [
  { type: 'f32', value: 1.5, ABCD: '3FC0 0000', CDAB: '0000 3FC0', BADC: 'C03F 0000', DCBA: '0000 C03F' },
  { type: 'f32', value: -123.456787109375, ABCD: 'C2F6 E9E0', CDAB: 'E9E0 C2F6', BADC: 'F6C2 E0E9', DCBA: 'E0E9 F6C2' },
  { type: 'u32', value: 0x12345678, ABCD: '1234 5678', CDAB: '5678 1234', BADC: '3412 7856', DCBA: '7856 3412' },
  { type: 'u32', value: 4294967295, ABCD: 'FFFF FFFF', CDAB: 'FFFF FFFF', BADC: 'FFFF FFFF', DCBA: 'FFFF FFFF' },
  { type: 'i32', value: -2, ABCD: 'FFFF FFFE', CDAB: 'FFFE FFFF', BADC: 'FFFF FEFF', DCBA: 'FEFF FFFF' },
  { type: 'i32', value: 100000, ABCD: '0001 86A0', CDAB: '86A0 0001', BADC: '0100 A086', DCBA: 'A086 0100' },
  // A 16-bit value uses the byte order only: AB for ABCD and CDAB, BA for BADC and DCBA.
  { type: 'u16', value: 0x1234, ABCD: '1234', CDAB: '1234', BADC: '3412', DCBA: '3412' },
  { type: 'u16', value: 65535, ABCD: 'FFFF', CDAB: 'FFFF', BADC: 'FFFF', DCBA: 'FFFF' },
  { type: 'i16', value: -100, ABCD: 'FF9C', CDAB: 'FF9C', BADC: '9CFF', DCBA: '9CFF' },
  { type: 'i16', value: 320, ABCD: '0140', CDAB: '0140', BADC: '4001', DCBA: '4001' }
] as const
const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const

describe('Modbus register decoding', () => {
  for (const v of VECTORS) {
    for (const order of ORDERS) {
      it(`${v.type} ${v.value} in ${order} is ${v[order]}`, () => {
        expect(decodeRaw(hex(v[order]), 0, v.type, order)).toBe(v.value)
        expect(encodeRaw(v.value, v.type, order)).toEqual(hex(v[order]))
        // At an offset within a longer read.
        expect(decodeRaw(Buffer.concat([hex('AAAA BBBB'), hex(v[order])]), 2, v.type, order)).toBe(v.value)
      })
    }
  }

  it('reads bits packed least significant first (coils, discrete inputs)', () => {
    const bits = Buffer.from([0b0000_0101, 0b0000_0001])
    expect([0, 1, 2, 3, 8, 9].map((i) => decodeBit(bits, i))).toEqual([1, 0, 1, 0, 1, 0])
    expect(() => decodeBit(bits, 16)).toThrow(RangeError)
  })

  it('applies scale and offset, and refuses a value past the registers read', () => {
    const spec: RegisterSpec = { function: 'holding_registers', address: 0, type: 'i16', scale: 0.1, offset: 5, unit: '°C' }
    expect(decodeValue(hex('FF9C'), 0, spec)).toBe(-5)
    expect(decodeValue(hex('0140'), 0, { ...spec, scale: 0.001, offset: 0, unit: 'MPa' })).toBe(0.32)
    expect(decodeValue(Buffer.from([1]), 0, { function: 'coils', address: 0, type: 'bit', unit: '' })).toBe(1)
    expect(() => decodeRaw(hex('0001'), 0, 'u32')).toThrow(RangeError)
  })
})

describe('read planning', () => {
  const reg = (address: number, type: RegisterSpec['type'], fn: RegisterSpec['function'] = 'holding_registers'): RegisterSpec => ({
    function: fn,
    address,
    type,
    unit: 'x'
  })

  it('merges adjacent registers of one table into one request and keeps tables apart', () => {
    const blocks = planReads({ a: reg(0, 'i16'), b: reg(1, 'f32'), c: reg(3, 'u16'), d: reg(10, 'u16'), e: reg(0, 'f32', 'input_registers') })
    expect(blocks.map((b) => [b.function, b.address, b.count, b.fields.map((f) => `${f.metric}@${f.offset}`)])).toEqual([
      ['holding_registers', 0, 4, ['a@0', 'b@1', 'c@3']],
      ['holding_registers', 10, 1, ['d@0']],
      ['input_registers', 0, 2, ['e@0']]
    ])
  })

  it('never asks for more than 125 registers in one request', () => {
    const regs = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`m${i}`, reg(i * 2, 'u32')]))
    const blocks = planReads(regs)
    expect(blocks.map((b) => b.count)).toEqual([124, 76])
    expect(Math.max(...blocks.map((b) => b.count))).toBeLessThanOrEqual(MAX_READ.holding_registers)
  })
})

describe('profiles with register maps', () => {
  const base = readFileSync(new URL('../devices/sprinkler_pressure.yaml', import.meta.url), 'utf8')

  it('load as shipped', () => {
    expect(parseProfile(base, 'sprinkler_pressure.yaml').modbus?.registers.pressure_mpa?.type).toBe('i16')
  })

  it.each([
    ['type: i16, scale', 'type: i17, scale', '/modbus/registers/pressure_mpa/type'],
    ['function: holding_registers, address: 0', 'function: holding_registers, address: 0, order: XYZW', '/modbus/registers/pressure_mpa/order'],
    ['pressure_mpa: { function', 'pressure_kpa: { function', '/modbus/registers/pressure_kpa is not a metric'],
    ['scale: 0.001, unit: MPa', 'scale: 0.001, unit: kPa', '/modbus/registers/pressure_mpa/unit kPa'],
    ['address: 0, type: i16', 'address: 0, type: bit', '/modbus/registers/pressure_mpa/type bit cannot be read from holding_registers'],
    ['events: [fault, tamper, low_battery, test, restore]', 'events: [tamper]', '/events must include fault'],
    ['protocols: [mqtt, modbus]', 'protocols: [mqtt]', '/modbus is set but protocols'],
    ['scale: 0.001, unit: MPa', 'scale: .nan, unit: MPa', '/modbus/registers/pressure_mpa/scale must be a finite number'],
    ['scale: 0.001, unit: MPa', 'scale: .inf, unit: MPa', '/modbus/registers/pressure_mpa/scale must be a finite number'],
    ['scale: 0.001, unit: MPa', 'scale: 0.001, offset: -.inf, unit: MPa', '/modbus/registers/pressure_mpa/offset must be a finite number']
  ])('refuses a bad map, naming the field (%s → %s)', (from, to, message) => {
    expect(base.includes(from)).toBe(true)
    expect(() => parseProfile(base.replace(from, to), 'bad.yaml')).toThrow(message)
  })

  it('keeps MQTT-only profiles valid', () => {
    const mqttOnly = base.replace(/\nmodbus:[\s\S]*$/, '\n').replace('protocols: [mqtt, modbus]', 'protocols: [mqtt]')
    expect(parseProfile(mqttOnly, 'mqtt-only.yaml').modbus).toBeUndefined()
  })
})

describe('Modbus TCP framing', () => {
  it('builds a read request: MBAP header, function code, address, quantity', () => {
    expect(encodeRead(0x0102, 3, 'input_registers', 0x10, 2)).toEqual(hex('0102 0000 0006 03 04 0010 0002'))
  })

  it('cuts frames by the header length alone, keeping an incomplete one for later', () => {
    const { frames, rest } = takeFrames(hex('0001 0000 0007 01 03 04 0001 0002  0002 0000 0003 02 83 02  0003 0000'))
    expect(frames.map((f) => [f.txn, f.unitId, f.pdu.toString('hex')])).toEqual([
      [1, 1, '0304' + '00010002'],
      [2, 2, '8302']
    ])
    expect(rest).toEqual(hex('0003 0000'))
  })

  it('refuses a header no Modbus TCP server sends', () => {
    expect(() => takeFrames(hex('0001 0001 0007 01 03'))).toThrow('protocol id 1')
    expect(() => takeFrames(hex('0001 0000 0400 01 03'))).toThrow('header length 1024')
  })

  it('reads data and exceptions, and refuses a byte count the frame does not carry or another function', () => {
    expect(readReply(hex('03 04 0001 0002'), 'holding_registers', 2)).toEqual({ data: hex('0001 0002') })
    expect(readReply(hex('83 0B'), 'holding_registers', 2)).toEqual({ exception: 11 })
    expect(readReply(hex('01 01 05'), 'coils', 3)).toEqual({ data: hex('05') })
    expect(() => readReply(hex('03 08 0001 0002'), 'holding_registers', 2)).toThrow('malformed answer: byte count 8 but 4 bytes follow')
    expect(() => readReply(hex('04 04 0001 0002'), 'holding_registers', 2)).toThrow('late or mismatched answer')
    expect(() => readReply(hex('03 02 0001'), 'holding_registers', 2)).toThrow('late or mismatched answer')
  })
})
