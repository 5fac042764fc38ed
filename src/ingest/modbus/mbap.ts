/**
 * Modbus TCP framing for the pollers' read requests. Pure, so a broken reply can be tested without sockets.
 *
 * The frames are built and checked here rather than by jsmodbus's client: jsmodbus takes a frame it cannot parse
 * (a byte count that disagrees with the header length, an unknown function code) for an incomplete one and waits
 * for more bytes forever, which froze every slave behind the gateway. Here a frame is cut by its header length alone,
 * so one bad frame is one bad frame, and whatever is wrong with it is reported at once.
 *
 * Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3: the MBAP header is transaction id (2 bytes),
 * protocol id (2, always 0), length (2: the unit id plus the PDU) and unit id (1). Modbus Application Protocol
 * v1.1b3 §4.1: a PDU is at most 253 bytes, so the length is 2 to 254.
 */
import type { ModbusFunction } from '../../../schemas/device-profile.js'

export const FUNCTION_CODE: Record<ModbusFunction, number> = { coils: 1, discrete_inputs: 2, holding_registers: 3, input_registers: 4 }
const HEADER = 7
const MAX_LENGTH = 254

export interface Frame {
  txn: number
  unitId: number
  pdu: Buffer
}

/** A reply that breaks the protocol: the byte stream can no longer be trusted, the connection must be reopened. */
export class ProtocolViolation extends Error {}

/** A read request (§6.1–6.4): function code, starting address, quantity. */
export function encodeRead(txn: number, unitId: number, fn: ModbusFunction, address: number, count: number): Buffer {
  const b = Buffer.alloc(HEADER + 5)
  b.writeUInt16BE(txn, 0)
  b.writeUInt16BE(0, 2)
  b.writeUInt16BE(6, 4)
  b.writeUInt8(unitId, 6)
  b.writeUInt8(FUNCTION_CODE[fn], 7)
  b.writeUInt16BE(address, 8)
  b.writeUInt16BE(count, 10)
  return b
}

/**
 * Cut the complete frames off the front of `buf`; `rest` is an incomplete frame (at most 260 bytes, so a gateway
 * cannot make the buffer grow). Throws {@link ProtocolViolation} on a header no Modbus TCP server sends.
 */
export function takeFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = []
  let at = 0
  while (buf.length - at >= 6) {
    const protocol = buf.readUInt16BE(at + 2)
    const length = buf.readUInt16BE(at + 4)
    if (protocol !== 0) throw new ProtocolViolation(`malformed answer: protocol id ${protocol}, not 0 (Modbus)`)
    if (length < 2 || length > MAX_LENGTH) throw new ProtocolViolation(`malformed answer: header length ${length} outside 2–${MAX_LENGTH}`)
    if (buf.length - at < 6 + length) break
    frames.push({ txn: buf.readUInt16BE(at), unitId: buf.readUInt8(at + 6), pdu: buf.subarray(at + HEADER, at + 6 + length) })
    at += 6 + length
  }
  return { frames, rest: buf.subarray(at) }
}

/**
 * The data of a read reply, or its exception code (§7: function code + 0x80, then the code). Throws
 * {@link ProtocolViolation} when the reply is not an answer to this request or its byte count is wrong.
 */
export function readReply(pdu: Buffer, fn: ModbusFunction, count: number): { data: Buffer } | { exception: number } {
  const fc = pdu.readUInt8(0)
  const expected = FUNCTION_CODE[fn]
  if (fc === (expected | 0x80)) {
    if (pdu.length !== 2) throw new ProtocolViolation(`malformed answer: exception reply of ${pdu.length} bytes`)
    return { exception: pdu.readUInt8(1) }
  }
  if (fc !== expected) throw new ProtocolViolation(`late or mismatched answer: function ${fc} to a request for function ${expected}`)
  // §6.1–6.4: byte count N, then N bytes: 2 per register, or the bits packed 8 to a byte.
  const want = fn === 'coils' || fn === 'discrete_inputs' ? Math.ceil(count / 8) : count * 2
  const byteCount = pdu.length >= 2 ? pdu.readUInt8(1) : -1
  if (byteCount !== pdu.length - 2) throw new ProtocolViolation(`malformed answer: byte count ${byteCount} but ${pdu.length - 2} bytes follow`)
  if (byteCount !== want) throw new ProtocolViolation(`late or mismatched answer: ${byteCount} bytes for a request of ${want}`)
  return { data: Buffer.from(pdu.subarray(2)) }
}
