/**
 * A byte bound in front of the MQTT parser. aedes (through mqtt-packet) buffers a whole packet before it can be
 * checked, up to the protocol's 256 MiB, so a hostile client could exhaust memory with one header. This stream
 * reads each packet's fixed header [MQTT-2.2] as bytes pass and destroys the connection as soon as a packet
 * declares a remaining length above the limit, before the body arrives.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'

export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError'
  constructor(readonly size: number, readonly limit: number) {
    super(`MQTT packet of ${size} bytes exceeds the limit of ${limit}`)
  }
}

export class FrameGuard extends Duplex {
  // Parser state: 0 = expecting a packet type byte, 1 = reading the remaining-length varint, 2 = skipping the body.
  private state = 0
  private length = 0
  private multiplier = 1
  private skip = 0

  constructor(
    readonly socket: Socket,
    private readonly limit: number,
    private readonly onTooLarge: (err: FrameTooLargeError) => void
  ) {
    super({ allowHalfOpen: false })
    socket.on('data', (chunk: Buffer) => {
      const err = this.inspect(chunk)
      if (err) {
        this.onTooLarge(err)
        this.destroy(err)
        return
      }
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }

  private inspect(chunk: Buffer): FrameTooLargeError | null {
    let i = 0
    while (i < chunk.length) {
      if (this.state === 2) {
        const n = Math.min(this.skip, chunk.length - i)
        this.skip -= n
        i += n
        if (this.skip === 0) this.state = 0
        continue
      }
      const byte = chunk[i++]!
      if (this.state === 0) {
        this.state = 1
        this.length = 0
        this.multiplier = 1
        continue
      }
      // [MQTT-2.2.3] remaining length: 7 bits per byte, continuation bit 0x80, at most four bytes.
      this.length += (byte & 0x7f) * this.multiplier
      this.multiplier *= 128
      if (this.length > this.limit) return new FrameTooLargeError(this.length, this.limit)
      if ((byte & 0x80) === 0) {
        this.skip = this.length
        this.state = this.skip === 0 ? 0 : 2
      } else if (this.multiplier > 128 ** 4) {
        return new FrameTooLargeError(this.length, this.limit)
      }
    }
    return null
  }

  override _read(): void {
    this.socket.resume()
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback)
  }

  // The packets aedes writes while an earlier write is still in progress (the PUBACKs of a burst) reach the socket
  // together, corked, as one writev system call instead of one write each. Same completion semantics as _write.
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: (err?: Error | null) => void): void {
    this.socket.cork()
    const last = chunks.length - 1
    for (let i = 0; i < last; i++) this.socket.write(chunks[i]!.chunk, chunks[i]!.encoding)
    this.socket.write(chunks[last]!.chunk, chunks[last]!.encoding, callback)
    this.socket.uncork()
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback)
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy()
    callback(err)
  }
}
