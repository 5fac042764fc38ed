/**
 * GB/T 26875.3-2011 framing: encode a frame, and cut frames out of a TCP byte stream as it arrives (several per
 * chunk, one split across chunks, garbage between them). Pure: no sockets, no clocks.
 *
 * Layout (GB/T 26875.3-2011, the frame), multi-byte integers little-endian:
 * `@@` | serial:2 | version:2 | time:6 | source:6 | destination:6 | L:2 | command:1 | data:L | checksum:1 | `##`
 */

/** GB/T 26875.3-2011: the start and end markers. */
const START = 0x40 // '@', twice
const END = 0x23 // '#', twice
/** Bytes before the application data: start 2, serial 2, version 2, time 6, source 6, destination 6, L 2, command 1. */
export const HEADER_BYTES = 27
/** Bytes around the application data: the header, the checksum and the end marker (a frame is 30 + L bytes). */
export const FRAME_OVERHEAD = 30
/** GB/T 26875.3-2011: application data is at most 1024 bytes. */
export const MAX_DATA_BYTES = 1024

/** GB/T 26875.3-2011 command bytes; 128–255 are user-defined. */
export const Command = {
  control: 1,
  sendData: 2,
  confirm: 3,
  request: 4,
  answer: 5,
  deny: 6
} as const

export const isKnownCommand = (c: number): boolean => (c >= 1 && c <= 6) || c >= 128

/** The 6-byte time field as sent: seconds, minutes, hours, day, month, year − 2000 (binary). */
export interface FrameTime {
  second: number
  minute: number
  hour: number
  day: number
  month: number
  year: number
}

export interface Frame {
  /** Incremented by the initiator, echoed by the responder. */
  serial: number
  /** Byte 4 major version (1), byte 5 user-defined. */
  version: [number, number]
  time: FrameTime
  /** The 6 address bytes as 12 lowercase hex digits, in wire order. */
  source: string
  destination: string
  command: number
  data: Buffer
}

export type FrameErrorCode = 'bad_checksum' | 'bad_end' | 'too_long' | 'unknown_command'

/**
 * A frame the decoder discarded. Its header was readable, so the serial and addresses are known and the gateway can
 * answer with a deny (GB/T 26875.3-2011: a bad checksum, an unknown command, over-long data or a wrong end marker are denied).
 */
export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    readonly header: Pick<Frame, 'serial' | 'version' | 'source' | 'destination' | 'command'>,
    message: string
  ) {
    super(message)
    this.name = 'FrameError'
  }
}

export const ADDRESS_PATTERN = /^[0-9a-f]{12}$/

function addressBytes(address: string): Buffer {
  if (!ADDRESS_PATTERN.test(address)) throw new RangeError(`address ${address} is not 12 lowercase hex digits`)
  return Buffer.from(address, 'hex')
}

export function readTime(buf: Buffer, offset: number): FrameTime {
  return {
    second: buf[offset]!,
    minute: buf[offset + 1]!,
    hour: buf[offset + 2]!,
    day: buf[offset + 3]!,
    month: buf[offset + 4]!,
    year: 2000 + buf[offset + 5]!
  }
}

export function writeTime(buf: Buffer, offset: number, t: FrameTime): void {
  buf[offset] = t.second
  buf[offset + 1] = t.minute
  buf[offset + 2] = t.hour
  buf[offset + 3] = t.day
  buf[offset + 4] = t.month
  buf[offset + 5] = t.year - 2000
}

/** The wall-clock time at a UTC offset, as the time field carries it (devices send their local time). */
export function timeAt(epochMs: number, utcOffsetMin: number): FrameTime {
  const d = new Date(epochMs + utcOffsetMin * 60_000)
  return {
    second: d.getUTCSeconds(),
    minute: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    day: d.getUTCDate(),
    month: d.getUTCMonth() + 1,
    year: d.getUTCFullYear()
  }
}

/** Epoch ms of a time field read at a UTC offset; null when it is no calendar time (a BCD clock, an unset one). */
export function epochOf(t: FrameTime, utcOffsetMin: number): number | null {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 || t.second > 59) return null
  const ms = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second)
  // Date.UTC rolls 31 February over into March: that is no time the device meant.
  if (new Date(ms).getUTCDate() !== t.day) return null
  return ms - utcOffsetMin * 60_000
}

/** GB/T 26875.3-2011 checksum: the low 8 bits of the sum of bytes 2 … 26 + L (everything between the start marker and the checksum). */
export function checksum(buf: Buffer, from: number, to: number): number {
  let sum = 0
  for (let i = from; i < to; i++) sum += buf[i]!
  return sum & 0xff
}

export function encodeFrame(frame: Frame): Buffer {
  const L = frame.data.length
  if (L > MAX_DATA_BYTES) throw new RangeError(`application data of ${L} bytes > ${MAX_DATA_BYTES}`)
  const buf = Buffer.alloc(FRAME_OVERHEAD + L)
  buf[0] = START
  buf[1] = START
  buf.writeUInt16LE(frame.serial & 0xffff, 2)
  buf[4] = frame.version[0]
  buf[5] = frame.version[1]
  writeTime(buf, 6, frame.time)
  addressBytes(frame.source).copy(buf, 12)
  addressBytes(frame.destination).copy(buf, 18)
  buf.writeUInt16LE(L, 24)
  buf[26] = frame.command
  frame.data.copy(buf, HEADER_BYTES)
  buf[HEADER_BYTES + L] = checksum(buf, 2, HEADER_BYTES + L)
  buf[HEADER_BYTES + L + 1] = END
  buf[HEADER_BYTES + L + 2] = END
  return buf
}

/** The answer to a frame (confirm or deny): serial and version echoed, addresses swapped, no application data. */
export function replyTo(frame: Pick<Frame, 'serial' | 'version' | 'source' | 'destination'>, command: number, time: FrameTime): Buffer {
  return encodeFrame({
    serial: frame.serial,
    version: frame.version,
    time,
    source: frame.destination,
    destination: frame.source,
    command,
    data: Buffer.alloc(0)
  })
}

export type Decoded = { ok: true; frame: Frame } | { ok: false; error: FrameError }

/**
 * Cuts frames out of a byte stream. Bytes before a start marker are skipped (counted in `discarded`). A frame that
 * fails a check yields a {@link FrameError}; the decoder then looks for the next start marker one byte after the
 * failed one, so a frame that begins inside the discarded bytes is still found. It never holds more than one
 * frame's worth of bytes plus the latest chunk.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0)
  /** Bytes skipped while looking for a start marker. */
  discarded = 0

  push(chunk: Buffer): Decoded[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    const out: Decoded[] = []
    let pos = 0
    const buf = this.buf
    for (;;) {
      const start = findStart(buf, pos)
      if (start < 0) {
        // Keep a trailing '@': it may be the first half of a start marker.
        const keep = buf.length > pos && buf[buf.length - 1] === START ? 1 : 0
        this.discarded += buf.length - pos - keep
        pos = buf.length - keep
        break
      }
      this.discarded += start - pos
      pos = start
      if (buf.length - pos < HEADER_BYTES) break
      const header = readHeader(buf, pos)
      const L = buf.readUInt16LE(pos + 24)
      if (L > MAX_DATA_BYTES) {
        out.push({ ok: false, error: new FrameError('too_long', header, `application data length ${L} > ${MAX_DATA_BYTES}`) })
        pos += 1
        continue
      }
      if (buf.length - pos < FRAME_OVERHEAD + L) break
      const end = pos + HEADER_BYTES + L
      const error = check(buf, pos, end, header)
      if (error) {
        out.push({ ok: false, error })
        pos += 1
        continue
      }
      // A copy: the frame outlives this chunk, and must not pin the whole TCP read buffer.
      const data = Buffer.from(buf.subarray(pos + HEADER_BYTES, end))
      out.push({ ok: true, frame: { ...header, time: readTime(buf, pos + 6), data } })
      pos = end + 3
    }
    this.buf = pos >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos))
    return out
  }
}

function findStart(buf: Buffer, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) if (buf[i] === START && buf[i + 1] === START) return i
  return -1
}

function readHeader(buf: Buffer, pos: number): FrameError['header'] {
  return {
    serial: buf.readUInt16LE(pos + 2),
    version: [buf[pos + 4]!, buf[pos + 5]!],
    source: buf.toString('hex', pos + 12, pos + 18),
    destination: buf.toString('hex', pos + 18, pos + 24),
    command: buf[pos + 26]!
  }
}

function check(buf: Buffer, pos: number, end: number, header: FrameError['header']): FrameError | null {
  if (buf[end + 1] !== END || buf[end + 2] !== END) return new FrameError('bad_end', header, 'no end marker ## after the checksum')
  const sum = checksum(buf, pos + 2, end)
  if (buf[end] !== sum) {
    return new FrameError('bad_checksum', header, `checksum 0x${hex(buf[end]!)} where the bytes sum to 0x${hex(sum)}`)
  }
  if (!isKnownCommand(header.command)) return new FrameError('unknown_command', header, `unknown command ${header.command}`)
  return null
}

const hex = (n: number) => n.toString(16).padStart(2, '0')
