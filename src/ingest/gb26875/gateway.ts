/**
 * The GB/T 26875.3 gateway: a TCP server UITDs connect to. Frames are cut from the stream, the UITD is identified by
 * its source address (the protocol carries no credentials: the address is the identity), and what it sends goes
 * through the same normalize → ingest log path as an MQTT PUBLISH.
 *
 * Acknowledged means durable: the confirm (command 3) is written only after the ingest-log append resolved, as a
 * PUBACK is. A failed append gets no confirm, and the UITD sends the frame again (GB/T 26875.3-2011: 10 s timeout, 3 retries).
 * The core never logs device input in a message: it goes under its own key.
 */
import net from 'node:net'
import { once } from 'node:events'
import type { Logger } from '../../logger.js'
import type { ProfileMap } from '../profiles.js'
import type { IngestLog } from '../ingest-log.js'
import type { Rejections } from '../rejections.js'
import { normalize } from '../normalize.js'
import type { DeviceIdentity, MessageType } from '../types.js'
import type { PresenceSink } from '../modbus/device-poller.js'
import { decodeAppData } from './app-data.js'
import { Command, FrameDecoder, replyTo, timeAt, type Decoded, type Frame, type FrameError } from './frame.js'
import { translate } from './to-ingest.js'

export interface Gb26875GatewayOptions {
  host: string
  /** `0` picks a free port (tests). */
  port: number
  /** The device registered with a source address (12 lowercase hex digits), or null. */
  findDevice(address: string): Promise<DeviceIdentity | null>
  profiles: ProfileMap
  ingestLog: Pick<IngestLog, 'append'>
  presence: PresenceSink
  rejections: Rejections
  log: Logger
  /** The time zone of the UITDs' clocks, minutes east of UTC. @defaultValue 480 (China Standard Time) */
  utcOffsetMin?: number
  /**
   * A connection silent this long is closed. Field practice: a heartbeat every 20–30 s, so three missed.
   * @defaultValue 90000
   */
  idleTimeoutMs?: number
}

export interface Gb26875Gateway {
  readonly port: number
  /** UITDs with a connection up. */
  readonly connected: number
  close(): Promise<void>
}

export async function startGb26875Gateway(opts: Gb26875GatewayOptions): Promise<Gb26875Gateway> {
  const utcOffsetMin = opts.utcOffsetMin ?? 480
  const idleTimeoutMs = opts.idleTimeoutMs ?? 90_000
  /** The connection serving each UITD address: a newer connection from the same address replaces the older one. */
  const byAddress = new Map<string, UitdConnection>()
  const sockets = new Set<net.Socket>()
  const deps = { ...opts, utcOffsetMin, byAddress }

  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    new UitdConnection(socket, deps).start(idleTimeoutMs)
  })
  server.listen(opts.port, opts.host)
  await once(server, 'listening')

  return {
    port: (server.address() as net.AddressInfo).port,
    get connected() {
      return byAddress.size
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()))
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}

type Deps = Gb26875GatewayOptions & { utcOffsetMin: number; byAddress: Map<string, UitdConnection> }

class UitdConnection {
  private readonly decoder = new FrameDecoder()
  private device: DeviceIdentity | null = null
  private address: string | null = null

  constructor(
    private readonly socket: net.Socket,
    private readonly deps: Deps
  ) {}

  start(idleTimeoutMs: number): void {
    const { socket } = this
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000)
    socket.setTimeout(idleTimeoutMs, () => socket.destroy())
    // Frames of one connection are handled one after another, in order; the socket is not read meanwhile.
    socket.on('data', (chunk: Buffer) => {
      socket.pause()
      void this.handleAll(this.decoder.push(chunk)).finally(() => {
        if (!socket.destroyed) socket.resume()
      })
    })
    socket.on('error', (err) => this.deps.log.debug({ err, address: this.address }, 'UITD connection error'))
    socket.once('close', () => {
      if (!this.device || !this.address) return
      if (this.deps.byAddress.get(this.address) === this) this.deps.byAddress.delete(this.address)
      this.deps.presence.disconnected(this.device.deviceId, this)
    })
  }

  private async handleAll(decoded: Decoded[]): Promise<void> {
    for (const d of decoded) {
      // Closed, or ended after denying an unknown address: the rest of the chunk gets no answer.
      if (this.socket.destroyed || this.socket.writableEnded) return
      try {
        if (d.ok) await this.handle(d.frame)
        else this.deny(d.error)
      } catch (err) {
        // The registry or the ingest log is away: no confirm, and the UITD sends again (on a new connection).
        this.deps.log.error({ err, address: this.address, deviceId: this.device?.deviceId }, 'UITD frame not handled; not confirmed')
        this.socket.destroy()
        return
      }
    }
  }

  /** GB/T 26875.3-2011: a frame that fails a check is discarded and denied (command 6). */
  private deny(error: FrameError): void {
    const { source } = error.header
    const deviceId = source === this.address ? (this.device?.deviceId ?? null) : null
    this.deps.rejections.record('bad_frame', deviceId, error.message, { code: error.code, address: source, remoteAddress: this.socket.remoteAddress })
    this.reply(error.header, Command.deny)
  }

  private reply(to: Pick<Frame, 'serial' | 'version' | 'source' | 'destination'>, command: number): void {
    this.socket.write(replyTo(to, command, timeAt(Date.now(), this.deps.utcOffsetMin)))
  }

  private async handle(frame: Frame): Promise<void> {
    const device = await this.identify(frame)
    if (!device) return
    const { deps } = this
    switch (frame.command) {
      case Command.control: // a time synchronisation: confirmed (the center keeps its own clock)
        deps.presence.seen(device.deviceId, this)
        return this.reply(frame, Command.confirm)
      case Command.sendData:
        if (await this.store(device, frame)) {
          deps.presence.seen(device.deviceId, this)
          this.reply(frame, Command.confirm)
        }
        return
      case Command.request: // reads the center does not serve: denied at once rather than retried for 30 s
        deps.log.debug({ deviceId: device.deviceId, serial: frame.serial }, 'UITD request denied: not served')
        return this.reply(frame, Command.deny)
      default: // confirm, answer, deny, user-defined: this server sends the UITD nothing that they could answer
        deps.log.debug({ deviceId: device.deviceId, command: frame.command }, 'UITD frame ignored')
    }
  }

  /** The device of this connection; null (after a deny) when the frame's source address is not it or not known. */
  private async identify(frame: Frame): Promise<DeviceIdentity | null> {
    const { deps } = this
    if (this.device) {
      if (frame.source === this.address) return this.device
      deps.rejections.record('acl_publish', this.device.deviceId, `frame from address ${frame.source} on the connection of ${this.address}`)
      this.reply(frame, Command.deny)
      return null
    }
    const device = await deps.findDevice(frame.source)
    if (!device) {
      deps.rejections.record('unknown_device', null, `no gb26875 device has address ${frame.source}`, {
        address: frame.source,
        remoteAddress: this.socket.remoteAddress
      })
      // An unknown address gets nothing more from this connection.
      this.socket.end(replyTo(frame, Command.deny, timeAt(Date.now(), deps.utcOffsetMin)))
      return null
    }
    if (!deps.profiles.has(device.profile)) {
      // Confirming what could not be validated would lose it: the UITD keeps it and sends again once the profile is back.
      deps.log.error({ deviceId: device.deviceId, profile: device.profile }, 'device profile not loaded; UITD connection closed')
      this.socket.destroy()
      return null
    }
    const previous = deps.byAddress.get(frame.source)
    this.device = device
    this.address = frame.source
    deps.byAddress.set(frame.source, this)
    // The newer connection replaces the older: a UITD that reconnected leaves a half-open socket behind.
    if (previous) {
      deps.log.info({ deviceId: device.deviceId, remoteAddress: this.socket.remoteAddress }, 'UITD reconnected; older connection closed')
      previous.socket.destroy()
    }
    deps.presence.connected(device.deviceId, this, device.unitId)
    return device
  }

  /** Validate and append what a send-data frame carries. True once it is in the log (or refused: confirmed too). */
  private async store(device: DeviceIdentity, frame: Frame): Promise<boolean> {
    if (frame.data.length === 0) return true // field practice: an empty send-data frame is the heartbeat
    const { deps } = this
    const rx = Date.now()
    const decoded = decodeAppData(frame.data)
    // Refused application data is confirmed, as an invalid MQTT payload is acknowledged: the UITD would otherwise
    // send it forever and hold back what comes after it.
    if (!decoded.ok) {
      deps.rejections.record('schema', device.deviceId, decoded.detail, { source: 'gb26875', serial: frame.serial })
      return true
    }
    const profile = deps.profiles.get(device.profile)!
    const content = translate(decoded.value, { profile, serial: frame.serial, rx, utcOffsetMin: deps.utcOffsetMin })
    for (const r of content.refused) deps.rejections.record(r.reason, device.deviceId, r.detail, { source: 'gb26875', serial: frame.serial })
    if (content.unstored > 0) {
      deps.log.debug({ deviceId: device.deviceId, dataType: decoded.value.type, objects: content.unstored }, 'UITD data confirmed, not stored')
    }
    const batches: [MessageType, object[]][] = [
      ['event', content.events],
      ['telemetry', content.readings]
    ]
    for (const [type, items] of batches) {
      if (items.length === 0) continue
      const result = normalize(device, profile, type, Buffer.from(JSON.stringify(items)), rx)
      if (!result.ok) {
        deps.rejections.record(result.reason, device.deviceId, result.detail, { source: 'gb26875', serial: frame.serial })
        continue
      }
      // Throws when the log is away: no confirm (handleAll closes the connection).
      await deps.ingestLog.append(result.message)
    }
    return true
  }
}
