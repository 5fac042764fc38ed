/**
 * A UITD's side of GB/T 26875.3 over TCP: sends frames and waits for the center's answer to each (confirm or deny,
 * matched by the echoed serial number). Used by the UITD simulator and the tests.
 */
import net from 'node:net'
import { once } from 'node:events'
import { Command, FrameDecoder, encodeFrame, timeAt, type Frame } from '../../src/ingest/gb26875/frame.js'
import { encodeAppData, type AppData } from '../../src/ingest/gb26875/app-data.js'

export interface UitdClientOptions {
  host: string
  port: number
  /** This UITD's source address, 12 hex digits. */
  address: string
  /** The center's address. @defaultValue 000000000000 */
  center?: string
  /** How long to wait for an answer, ms. GB/T 26875.3-2011, answers: timeout at most 10 s. @defaultValue 10000 */
  timeoutMs?: number
  utcOffsetMin?: number
}

export class UitdClient {
  private readonly decoder = new FrameDecoder()
  private readonly waiting = new Map<number, (f: Frame) => void>()
  private serial = 0
  /** Answers that matched no frame sent (or came after their timeout). */
  readonly unexpected: Frame[] = []

  private constructor(
    readonly socket: net.Socket,
    private readonly opts: UitdClientOptions
  ) {
    socket.on('data', (chunk: Buffer) => {
      for (const d of this.decoder.push(chunk)) {
        if (!d.ok) continue
        const resolve = this.waiting.get(d.frame.serial)
        if (resolve) {
          this.waiting.delete(d.frame.serial)
          resolve(d.frame)
        } else {
          this.unexpected.push(d.frame)
        }
      }
    })
    socket.on('error', () => {})
  }

  static async connect(opts: UitdClientOptions): Promise<UitdClient> {
    const socket = net.connect(opts.port, opts.host)
    await once(socket, 'connect')
    return new UitdClient(socket, { ...opts, address: opts.address.toLowerCase() })
  }

  /** A frame from this UITD, with the next serial number. */
  frame(command: number, data: Buffer = Buffer.alloc(0), serial = this.nextSerial()): Frame {
    return {
      serial,
      version: [1, 0],
      time: timeAt(Date.now(), this.opts.utcOffsetMin ?? 480),
      source: this.opts.address,
      destination: this.opts.center ?? '000000000000',
      command,
      data
    }
  }

  nextSerial(): number {
    this.serial = (this.serial + 1) & 0xffff
    return this.serial
  }

  /** Send bytes (a frame, or anything a test wants) and wait for the answer carrying `serial`; null on timeout or close. */
  request(bytes: Buffer, serial: number, timeoutMs = this.opts.timeoutMs ?? 10_000): Promise<Frame | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(null), timeoutMs)
      const onClose = () => finish(null)
      const finish = (f: Frame | null) => {
        clearTimeout(timer)
        this.socket.off('close', onClose)
        this.waiting.delete(serial)
        resolve(f)
      }
      this.waiting.set(serial, finish)
      this.socket.once('close', onClose)
      this.socket.write(bytes)
    })
  }

  send(frame: Frame, timeoutMs?: number): Promise<Frame | null> {
    return this.request(encodeFrame(frame), frame.serial, timeoutMs)
  }

  heartbeat(): Promise<Frame | null> {
    return this.send(this.frame(Command.sendData))
  }

  sendData(data: AppData): Promise<Frame | null> {
    return this.send(this.frame(Command.sendData, encodeAppData(data)))
  }

  close(): void {
    this.socket.destroy()
  }
}
