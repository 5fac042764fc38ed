/**
 * GB/T 26875.3-2011 application data: `[type:1][count:1]` then `count` objects of a fixed size per type,
 * most followed by a 6-byte timestamp. Decodes the upstream types a UITD sends and encodes them (for tests and the
 * simulator). Pure.
 */
import iconv from 'iconv-lite'
import { readTime, writeTime, type FrameTime } from './frame.js'

/** GB/T 26875.3-2011: type codes of the upstream data this server reads. */
export const DataType = {
  systemStatus: 1,
  componentStatus: 2,
  analogValue: 3,
  systemOperation: 4,
  systemTime: 8,
  uitdStatus: 21,
  uitdOperation: 24,
  uitdClock: 28
} as const

/** GB/T 26875.3-2011, component status: the description is 31 bytes of GB 18030 text. */
export const DESCRIPTION_BYTES = 31

export interface SystemStatus { sysType: number; sysAddr: number; status: number; time: FrameTime }
export interface ComponentStatus {
  sysType: number
  sysAddr: number
  compType: number
  /** The 4-byte component address as an unsigned little-endian integer (often zone:2 + point:2). */
  compAddr: number
  status: number
  description: string
  time: FrameTime
}
export interface AnalogValue {
  sysType: number
  sysAddr: number
  compType: number
  compAddr: number
  analogType: number
  /** The raw int16; its unit and scale depend on `analogType`. */
  raw: number
  time: FrameTime
}
export interface SystemOperation { sysType: number; sysAddr: number; flags: number; operator: number; time: FrameTime }
export interface SystemTime { sysType: number; sysAddr: number; clock: FrameTime }
export interface UitdStatus { status: number; time: FrameTime }
export interface UitdOperation { flags: number; operator: number; time: FrameTime }

export type AppData =
  | { type: 1; objects: SystemStatus[] }
  | { type: 2; objects: ComponentStatus[] }
  | { type: 3; objects: AnalogValue[] }
  | { type: 4; objects: SystemOperation[] }
  | { type: 8; objects: SystemTime[] }
  | { type: 21; objects: UitdStatus[] }
  | { type: 24; objects: UitdOperation[] }
  | { type: 28; objects: { clock: FrameTime }[] }

interface Layout<T> {
  size: number
  /** GB/T 26875.3-2011, per type: the most objects one frame may carry (where the standard gives no n: as many as fit in L ≤ 1024). */
  max: number
  read(b: Buffer, o: number): T
  write(b: Buffer, o: number, v: T): void
}

const layouts: { [K in AppData['type']]: Layout<Extract<AppData, { type: K }>['objects'][number]> } = {
  1: {
    size: 10,
    max: 102,
    read: (b, o) => ({ sysType: b[o]!, sysAddr: b[o + 1]!, status: b.readUInt16LE(o + 2), time: readTime(b, o + 4) }),
    write: (b, o, v) => {
      b[o] = v.sysType
      b[o + 1] = v.sysAddr
      b.writeUInt16LE(v.status, o + 2)
      writeTime(b, o + 4, v.time)
    }
  },
  2: {
    size: 46,
    max: 22,
    read: (b, o) => ({
      sysType: b[o]!,
      sysAddr: b[o + 1]!,
      compType: b[o + 2]!,
      compAddr: b.readUInt32LE(o + 3),
      status: b.readUInt16LE(o + 7),
      description: decodeDescription(b.subarray(o + 9, o + 9 + DESCRIPTION_BYTES)),
      time: readTime(b, o + 40)
    }),
    write: (b, o, v) => {
      b[o] = v.sysType
      b[o + 1] = v.sysAddr
      b[o + 2] = v.compType
      b.writeUInt32LE(v.compAddr, o + 3)
      b.writeUInt16LE(v.status, o + 7)
      encodeDescription(v.description).copy(b, o + 9)
      writeTime(b, o + 40, v.time)
    }
  },
  3: {
    size: 16,
    max: 63,
    read: (b, o) => ({
      sysType: b[o]!,
      sysAddr: b[o + 1]!,
      compType: b[o + 2]!,
      compAddr: b.readUInt32LE(o + 3),
      analogType: b[o + 7]!,
      raw: b.readInt16LE(o + 8),
      time: readTime(b, o + 10)
    }),
    write: (b, o, v) => {
      b[o] = v.sysType
      b[o + 1] = v.sysAddr
      b[o + 2] = v.compType
      b.writeUInt32LE(v.compAddr, o + 3)
      b[o + 7] = v.analogType
      b.writeInt16LE(v.raw, o + 8)
      writeTime(b, o + 10, v.time)
    }
  },
  4: {
    size: 10,
    max: 102,
    read: (b, o) => ({ sysType: b[o]!, sysAddr: b[o + 1]!, flags: b[o + 2]!, operator: b[o + 3]!, time: readTime(b, o + 4) }),
    write: (b, o, v) => {
      b[o] = v.sysType
      b[o + 1] = v.sysAddr
      b[o + 2] = v.flags
      b[o + 3] = v.operator
      writeTime(b, o + 4, v.time)
    }
  },
  8: {
    size: 8,
    max: 127,
    read: (b, o) => ({ sysType: b[o]!, sysAddr: b[o + 1]!, clock: readTime(b, o + 2) }),
    write: (b, o, v) => {
      b[o] = v.sysType
      b[o + 1] = v.sysAddr
      writeTime(b, o + 2, v.clock)
    }
  },
  21: {
    size: 7,
    max: 146,
    read: (b, o) => ({ status: b[o]!, time: readTime(b, o + 1) }),
    write: (b, o, v) => {
      b[o] = v.status
      writeTime(b, o + 1, v.time)
    }
  },
  24: {
    size: 8,
    max: 127,
    read: (b, o) => ({ flags: b[o]!, operator: b[o + 1]!, time: readTime(b, o + 2) }),
    write: (b, o, v) => {
      b[o] = v.flags
      b[o + 1] = v.operator
      writeTime(b, o + 2, v.time)
    }
  },
  28: {
    size: 6,
    max: 170,
    read: (b, o) => ({ clock: readTime(b, o) }),
    write: (b, o, v) => writeTime(b, o, v.clock)
  }
}

export type AppDataResult = { ok: true; value: AppData } | { ok: false; detail: string }

/** Decode the application data of a send-data frame; L = 0 (a heartbeat) is not application data and never comes here. */
export function decodeAppData(data: Buffer): AppDataResult {
  if (data.length < 2) return { ok: false, detail: `application data of ${data.length} byte(s): no type and count` }
  const type = data[0]!
  const count = data[1]!
  const layout = (layouts as Record<number, Layout<unknown> | undefined>)[type]
  if (!layout) return { ok: false, detail: `application data type ${type} is not an upstream type this server reads` }
  if (count < 1 || count > layout.max) return { ok: false, detail: `type ${type}: ${count} objects, expected 1-${layout.max}` }
  if (data.length !== 2 + count * layout.size) {
    return { ok: false, detail: `type ${type}: ${data.length} bytes for ${count} objects of ${layout.size}` }
  }
  const objects: unknown[] = []
  for (let i = 0; i < count; i++) objects.push(layout.read(data, 2 + i * layout.size))
  return { ok: true, value: { type, objects } as AppData }
}

export function encodeAppData(value: AppData): Buffer {
  const layout = layouts[value.type] as Layout<unknown>
  if (value.objects.length < 1 || value.objects.length > layout.max) {
    throw new RangeError(`type ${value.type}: ${value.objects.length} objects, expected 1-${layout.max}`)
  }
  const buf = Buffer.alloc(2 + value.objects.length * layout.size)
  buf[0] = value.type
  buf[1] = value.objects.length
  value.objects.forEach((v, i) => layout.write(buf, 2 + i * layout.size, v))
  return buf
}

/** GB 18030 text padded with NULs (some panels pad with spaces): the padding is not part of the description. */
function decodeDescription(bytes: Buffer): string {
  const nul = bytes.indexOf(0)
  return iconv.decode(nul < 0 ? bytes : bytes.subarray(0, nul), 'gb18030').trimEnd()
}

/** At most 31 bytes, cut at a character boundary, NUL-padded. */
function encodeDescription(text: string): Buffer {
  const out = Buffer.alloc(DESCRIPTION_BYTES)
  let used = 0
  for (const ch of text) {
    const bytes = iconv.encode(ch, 'gb18030')
    if (used + bytes.length > DESCRIPTION_BYTES) break
    bytes.copy(out, used)
    used += bytes.length
  }
  return out
}
