import { describe, expect, it } from 'vitest'
import {
  Command,
  FrameDecoder,
  FrameError,
  checksum,
  encodeFrame,
  epochOf,
  replyTo,
  timeAt,
  type Frame,
  type Decoded
} from '../src/ingest/gb26875/frame.js'
import { decodeAppData, encodeAppData, type AppData, type ComponentStatus } from '../src/ingest/gb26875/app-data.js'

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex')
const time = { second: 35, minute: 58, hour: 9, day: 26, month: 9, year: 2012 }

// STANDARDS.md: a center's confirm frame, checksum 0xAB.
const EXAMPLE_CONFIRM = '40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 03 AB 23 23'

const frame = (over: Partial<Frame> = {}): Frame => ({
  serial: 1,
  version: [1, 1],
  time,
  source: '385b01000000',
  destination: '790300000000',
  command: Command.confirm,
  data: Buffer.alloc(0),
  ...over
})

const frames = (out: Decoded[]) => out.map((d) => (d.ok ? d.frame : d.error))

describe('GB/T 26875.3 frames', () => {
  it('encodes the example confirm frame byte for byte, and decodes it back', () => {
    const bytes = encodeFrame(frame())
    expect(bytes).toEqual(hex(EXAMPLE_CONFIRM))
    expect(checksum(bytes, 2, 27)).toBe(0xab)
    const out = new FrameDecoder().push(hex(EXAMPLE_CONFIRM))
    expect(out).toEqual([{ ok: true, frame: frame() }])
  })

  it('answers with the serial and version echoed and the addresses swapped', () => {
    const sent = frame({ serial: 0xbeef, command: Command.sendData, source: 'aabbccddeeff', destination: '000000000001' })
    const [reply] = new FrameDecoder().push(replyTo(sent, Command.confirm, time))
    expect(reply).toMatchObject({ ok: true, frame: { serial: 0xbeef, command: 3, source: '000000000001', destination: 'aabbccddeeff', version: [1, 1] } })
  })

  it('round-trips application data up to the 1024-byte limit', () => {
    const data = Buffer.alloc(1024, 7)
    const [d] = new FrameDecoder().push(encodeFrame(frame({ command: Command.sendData, data })))
    expect(d).toEqual({ ok: true, frame: frame({ command: Command.sendData, data }) })
    expect(() => encodeFrame(frame({ data: Buffer.alloc(1025) }))).toThrow(RangeError)
  })

  it('skips garbage before a start marker and keeps a split marker', () => {
    const d = new FrameDecoder()
    const bytes = encodeFrame(frame())
    expect(d.push(Buffer.concat([hex('00 23 40 11'), bytes.subarray(0, 1)]))).toEqual([])
    expect(frames(d.push(bytes.subarray(1)))).toEqual([frame()])
    expect(d.discarded).toBe(4)
  })

  it('denies a bad checksum, a wrong end, an over-long L and an unknown command, then resynchronises', () => {
    const good = encodeFrame(frame({ serial: 9 }))
    const badSum = encodeFrame(frame({ serial: 2 }))
    badSum[27] = badSum[27]! ^ 0xff
    const badEnd = encodeFrame(frame({ serial: 3 }))
    badEnd[29] = 0x00
    const tooLong = encodeFrame(frame({ serial: 4 }))
    tooLong.writeUInt16LE(1025, 24)
    const unknown = encodeFrame(frame({ serial: 5, command: 7 }))
    const out = new FrameDecoder().push(Buffer.concat([badSum, badEnd, tooLong.subarray(0, 27), unknown, good]))
    const errors = out.filter((d) => !d.ok).map((d) => (d as { error: FrameError }).error)
    expect(errors.map((e) => [e.code, e.header.serial])).toEqual([
      ['bad_checksum', 2],
      ['bad_end', 3],
      ['too_long', 4],
      ['unknown_command', 5]
    ])
    expect(errors.every((e) => e instanceof FrameError && e.header.source === '385b01000000')).toBe(true)
    expect(out.filter((d) => d.ok)).toEqual([{ ok: true, frame: frame({ serial: 9 }) }])
  })

  it('finds a frame that starts inside a discarded one', () => {
    const good = encodeFrame(frame({ serial: 7 }))
    // A header claiming 30 bytes of data with no end marker where it says: the good frame is inside those bytes.
    const fake = encodeFrame(frame({ serial: 6 })).subarray(0, 27)
    fake.writeUInt16LE(30, 24)
    const out = new FrameDecoder().push(Buffer.concat([fake, good, Buffer.alloc(10)]))
    expect(out.map((d) => (d.ok ? ['ok', d.frame.serial] : [d.error.code, d.error.header.serial]))).toEqual([
      ['bad_end', 6],
      ['ok', 7]
    ])
  })

  it('decodes a stream of many frames cut at random places', () => {
    let seed = 42
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
    const sent: Frame[] = []
    for (let i = 0; i < 300; i++) {
      const data = Buffer.alloc(Math.floor(random() * 60))
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(random() * 256)
      sent.push(frame({ serial: i, command: Command.sendData, data }))
    }
    const stream = Buffer.concat(sent.map(encodeFrame))
    for (let round = 0; round < 20; round++) {
      const d = new FrameDecoder()
      const got: Decoded[] = []
      for (let pos = 0; pos < stream.length; ) {
        const n = 1 + Math.floor(random() * 80)
        got.push(...d.push(stream.subarray(pos, pos + n)))
        pos += n
      }
      expect(frames(got)).toEqual(sent)
    }
  })

  it('reads and writes the time field at a UTC offset, and refuses a time that is no calendar time', () => {
    const ms = Date.UTC(2026, 11, 7, 1, 2, 3)
    const local = timeAt(ms, 480)
    expect(local).toEqual({ second: 3, minute: 2, hour: 9, day: 7, month: 12, year: 2026 })
    expect(epochOf(local, 480)).toBe(ms)
    expect(epochOf({ ...local, month: 0x12 }, 480)).toBeNull() // a BCD month
    expect(epochOf({ ...local, month: 2, day: 31 }, 480)).toBeNull()
  })
})

describe('GB/T 26875.3 application data', () => {
  const cases: AppData[] = [
    { type: 1, objects: [{ sysType: 1, sysAddr: 0, status: 0b11, time }] },
    {
      type: 2,
      objects: [
        { sysType: 1, sysAddr: 2, compType: 42, compAddr: 0x00220001, status: 0b11, description: '三层东侧走廊烟感', time },
        { sysType: 1, sysAddr: 2, compType: 23, compAddr: 7, status: 0b101, description: '', time }
      ]
    },
    { type: 3, objects: [{ sysType: 12, sysAddr: 1, compType: 99, compAddr: 3, analogType: 4, raw: -5, time }] },
    { type: 4, objects: [{ sysType: 1, sysAddr: 1, flags: 1, operator: 12, time }] },
    { type: 8, objects: [{ sysType: 1, sysAddr: 1, clock: time }] },
    { type: 21, objects: [{ status: 1, time }] },
    { type: 24, objects: [{ flags: 0x20, operator: 3, time }] },
    { type: 28, objects: [{ clock: time }] }
  ]
  for (const value of cases) {
    it(`round-trips type ${value.type}`, () => {
      expect(decodeAppData(encodeAppData(value))).toEqual({ ok: true, value })
    })
  }

  it('decodes the description as GB 18030 and cuts a long one at a character boundary', () => {
    const gb = Buffer.from('C8FDB2E3', 'hex') // 三层 in GB 2312 / GB 18030
    const data = encodeAppData(cases[1]!)
    data.fill(0, 2 + 9, 2 + 40)
    gb.copy(data, 2 + 9)
    const r = decodeAppData(data)
    expect(r.ok && r.value.type === 2 && r.value.objects[0]!.description).toBe('三层')
    const long = '一二三四五六七八九十一二三四五六七八'
    const again = decodeAppData(encodeAppData({ type: 2, objects: [{ ...(cases[1]!.objects[0] as ComponentStatus), description: long }] }))
    expect(again.ok && again.value.type === 2 && again.value.objects[0]!.description).toBe(long.slice(0, 15))
  })

  it('refuses a length that does not match the count, an unknown type, too many objects', () => {
    const data = encodeAppData(cases[2]!)
    expect(decodeAppData(data.subarray(0, data.length - 1))).toMatchObject({ ok: false })
    expect(decodeAppData(hex('0501 00'))).toMatchObject({ ok: false, detail: expect.stringContaining('type 5') })
    expect(decodeAppData(hex('0217'))).toMatchObject({ ok: false, detail: expect.stringContaining('1-22') })
    expect(decodeAppData(hex('02'))).toMatchObject({ ok: false })
  })
})
