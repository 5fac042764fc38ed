/**
 * One TCP connection to a Modbus TCP gateway (host:port) and the slaves behind it. Requests are serialised: most
 * gateways, and every serial line behind one, answer one request at a time. Each request has its own timeout, so
 * a dead slave holds the line for at most that long.
 *
 * The connection is reopened when it can no longer be trusted: after a broken or mismatched frame (the byte stream
 * is out of step), and after `stallAfter` timeouts in a row with no answer in between (a gateway that accepts the
 * connection but has stopped answering looks exactly like that). While it is down, requests fail at once instead
 * of each waiting its timeout, so a dead gateway's slaves fault in the same time however many there are.
 */
import net from 'node:net'
import { EventEmitter } from 'node:events'
import type { ModbusFunction } from '../../../schemas/device-profile.js'
import { FirewatchError } from '../../errors.js'
import { encodeRead, readReply, takeFrames, type Frame } from './mbap.js'

/** Exception codes, Modbus Application Protocol v1.1b3 §7. */
export const EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond'
}

/** One connection per gateway: host names are case-insensitive (RFC 4343), so `GW.local` and `gw.local` share it. */
export function gatewayKey(host: string, port: number): string {
  return `${host.toLowerCase().replace(/\.$/, '')}:${port}`
}

export interface GatewayOptions {
  host: string
  port: number
  /** How long one request may wait for its answer. @defaultValue 1000 */
  timeoutMs?: number
  /** First reconnect delay, doubled after each failed attempt up to `maxBackoffMs`. @defaultValue 250 */
  minBackoffMs?: number
  /** @defaultValue 10000 */
  maxBackoffMs?: number
  /** Timeouts in a row, on any units, after which the connection is reopened. @defaultValue 3 */
  stallAfter?: number
}

interface Pending {
  txn: number
  unitId: number
  fn: ModbusFunction
  count: number
  resolve: (data: Buffer) => void
  reject: (err: FirewatchError) => void
  timer: NodeJS.Timeout
  /** Frames of other transactions (late answers to requests that timed out) that came while this one waited. */
  foreign: number
}

/**
 * Emits `connected`; `disconnected` with the reason when a connection that was up is lost or reopened; and
 * `unreachable` with the reason and the next delay when a connection attempt fails — once per backoff step and
 * reason, so an unreachable gateway is logged without a flood. It never logs: the owner does.
 */
export class Gateway extends EventEmitter {
  readonly key: string
  readonly host: string
  readonly port: number
  private readonly timeoutMs: number
  private readonly minBackoffMs: number
  private readonly maxBackoffMs: number
  private readonly stallAfter: number
  private socket: net.Socket | null = null
  /** Settles when the connection attempt in progress has succeeded or failed. */
  private connecting: Promise<void> | null = null
  private isConnected = false
  private closed = false
  private backoffMs: number
  private retryTimer: NodeJS.Timeout | null = null
  private tail: Promise<unknown> = Promise.resolve()
  private rx: Buffer = Buffer.alloc(0)
  private txn = 0
  private pending: Pending | null = null
  /** Timeouts since the last answer, across all units. */
  private timeoutRun = 0
  private answeredHere = false
  private lastUnreachable = ''

  constructor(opts: GatewayOptions) {
    super()
    this.key = gatewayKey(opts.host, opts.port)
    this.host = opts.host
    this.port = opts.port
    this.timeoutMs = opts.timeoutMs ?? 1000
    this.minBackoffMs = opts.minBackoffMs ?? 250
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000
    this.stallAfter = opts.stallAfter ?? 3
    this.backoffMs = this.minBackoffMs
  }

  get connected(): boolean {
    return this.isConnected
  }

  start(): void {
    if (!this.socket && !this.closed) this.connect(0)
  }

  /**
   * Read `count` items of a table from one slave, after the requests queued before it. Resolves with the wire
   * bytes (registers big-endian, bits packed), rejects with FW_ERR_MODBUS_{TIMEOUT,EXCEPTION,OFFLINE,PROTOCOL}.
   */
  read(unitId: number, fn: ModbusFunction, address: number, count: number): Promise<Buffer> {
    const run = () => this.send(unitId, fn, address, count)
    const result = this.tail.then(run, run)
    this.tail = result.catch(() => undefined)
    return result
  }

  /** Close the connection for good; requests queued fail at once (FW_ERR_MODBUS_OFFLINE). */
  async close(): Promise<void> {
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    const socket = this.socket
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve())
        socket.destroy()
      })
    }
    await this.tail
  }

  private async send(unitId: number, fn: ModbusFunction, address: number, count: number): Promise<Buffer> {
    // A connection being opened is waited for (at most one connect timeout); one that is down fails at once.
    if (!this.isConnected && this.connecting && !this.closed) await this.connecting
    const socket = this.socket
    if (!this.isConnected || !socket || this.closed) throw new FirewatchError('FW_ERR_MODBUS_OFFLINE', `gateway ${this.key} not connected`)
    this.txn = (this.txn % 0xffff) + 1
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { txn: this.txn, unitId, fn, count, resolve, reject, foreign: 0, timer: setTimeout(() => this.timedOut(p), this.timeoutMs) }
      this.pending = p
      socket.write(encodeRead(p.txn, unitId, fn, address, count))
    })
  }

  private settle(p: Pending): boolean {
    if (this.pending !== p) return false
    this.pending = null
    clearTimeout(p.timer)
    return true
  }

  private timedOut(p: Pending): void {
    if (!this.settle(p)) return
    p.reject(
      new FirewatchError(
        'FW_ERR_MODBUS_TIMEOUT',
        p.foreign > 0 ? `late or mismatched answer (none to this request within ${this.timeoutMs} ms)` : `no answer within ${this.timeoutMs} ms`
      )
    )
    if (++this.timeoutRun >= this.stallAfter) this.reopen(`no answer to ${this.timeoutRun} requests in a row`)
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return
    this.rx = this.rx.length > 0 ? Buffer.concat([this.rx, chunk]) : chunk
    let frames: Frame[]
    try {
      const cut = takeFrames(this.rx)
      frames = cut.frames
      this.rx = cut.rest
    } catch (err) {
      this.violation((err as Error).message)
      return
    }
    for (const f of frames) if (this.socket === socket) this.onFrame(f)
  }

  private onFrame(f: Frame): void {
    const p = this.pending
    // Implementation Guide v1.0b §3.1.3: the transaction id pairs an answer with its request. Another id is a late answer
    // to a request that already timed out: dropped, the stream itself is still in step.
    if (!p || f.txn !== p.txn) {
      if (p) p.foreign++
      return
    }
    if (f.unitId !== p.unitId) return this.violation(`late or mismatched answer: unit ${f.unitId} to a request for unit ${p.unitId}`)
    let reply: ReturnType<typeof readReply>
    try {
      reply = readReply(f.pdu, p.fn, p.count)
    } catch (err) {
      return this.violation((err as Error).message)
    }
    this.settle(p)
    this.answered()
    if ('data' in reply) return p.resolve(reply.data)
    p.reject(new FirewatchError('FW_ERR_MODBUS_EXCEPTION', `Modbus exception ${reply.exception} (${EXCEPTION_NAMES[reply.exception] ?? 'unknown'})`))
  }

  /** The gateway answers on this connection: it is good, so the next drop starts again from the shortest delay. */
  private answered(): void {
    this.timeoutRun = 0
    if (this.answeredHere) return
    this.answeredHere = true
    this.backoffMs = this.minBackoffMs
    this.lastUnreachable = ''
  }

  /** A broken or mismatched frame: fail the request it was for and reopen, the stream is out of step. */
  private violation(reason: string): void {
    const p = this.pending
    if (p && this.settle(p)) p.reject(new FirewatchError('FW_ERR_MODBUS_PROTOCOL', reason))
    this.reopen(reason)
  }

  private reopen(reason: string): void {
    const socket = this.socket
    if (!socket || this.closed) return
    // A connection that answered before is opened again at once (a dead gateway never answered, so it still backs
    // off); the requests queued meanwhile wait for it instead of failing.
    const delay = this.answeredHere ? 0 : undefined
    this.dropSocket(socket, `${reason}; reopening the connection`, delay)
    socket.destroy()
  }

  /** Open a new connection, after `delayMs` (meanwhile the gateway is down and requests fail at once). */
  private connect(delayMs: number): void {
    const socket = new net.Socket()
    socket.setNoDelay(true)
    this.socket = socket
    this.rx = Buffer.alloc(0)
    this.timeoutRun = 0
    this.answeredHere = false
    if (delayMs <= 0) return this.attempt(socket)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      if (!this.closed && this.socket === socket) this.attempt(socket)
    }, delayMs)
    this.retryTimer.unref()
  }

  private attempt(socket: net.Socket): void {
    let settle!: () => void
    this.connecting = new Promise<void>((resolve) => (settle = resolve))
    const connectTimer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs)
    socket.once('connect', () => {
      clearTimeout(connectTimer)
      // Not a reset of the backoff: a gateway whose connection slots are full accepts and closes at once.
      this.isConnected = true
      this.connecting = null
      settle()
      this.emit('connected')
    })
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk))
    let reason = 'connection closed by the gateway'
    socket.on('error', (err) => (reason = err.message))
    socket.once('close', () => {
      clearTimeout(connectTimer)
      if (this.socket === socket) this.dropSocket(socket, reason)
      settle()
    })
    socket.connect({ host: this.host, port: this.port })
  }

  /** Forget `socket`, fail its request, and plan the next connection (after `delayMs`, or the backoff). */
  private dropSocket(socket: net.Socket, reason: string, delayMs?: number): void {
    if (this.socket !== socket) return
    const wasConnected = this.isConnected
    this.socket = null
    this.isConnected = false
    this.connecting = null
    const p = this.pending
    if (p && this.settle(p)) p.reject(new FirewatchError('FW_ERR_MODBUS_OFFLINE', `gateway ${this.key}: ${reason}`))
    if (this.closed) return
    const delay = delayMs ?? this.backoffMs
    if (delayMs === undefined) this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs * 2)
    if (wasConnected) this.emit('disconnected', reason)
    else if (reason !== this.lastUnreachable || delay < this.maxBackoffMs) {
      this.lastUnreachable = reason
      this.emit('unreachable', reason, delay)
    }
    this.connect(delay)
  }

  private get connectTimeoutMs(): number {
    return Math.max(this.timeoutMs, 1000)
  }
}
