/**
 * One simulated device's MQTT connection, per device contract v1 (schemas/device-payloads.ts): client id = username =
 * device id, password = secret; `status` retained with an `offline` will; commands subscribed; every item stamped
 * with `ts` (epoch ms) and the device's `seq` counter. Every simulator and the load generator publish through this.
 */
import mqtt, { type MqttClient } from 'mqtt'
import { MAX_ITEMS, MAX_PAYLOAD_BYTES } from '../../schemas/device-payloads.js'
import type { SimEvent } from './behaviour.js'

export interface DeviceCredentials {
  id: string
  secret: string
}

export interface DeviceCommand {
  cmd: string
  [field: string]: unknown
}

export interface DeviceClientOptions extends DeviceCredentials {
  url: string
  onCommand?: (command: DeviceCommand) => void
  /** The connection went down (the client reconnects by itself) or came back. */
  onLink?: (up: boolean) => void
  /** A reconnect was refused (device deleted, secret rotated): the client has given up. */
  onFatal?: (err: Error) => void
  /** How long the first connection may take. @defaultValue 10000 */
  connectTimeoutMs?: number
}

export interface Published {
  /** seq of the first and last item. */
  seq: [number, number]
  /** From the publish call to the PUBACK (QoS 1) or to the packet being written (QoS 0). */
  ackMs: number
}

export type Qos = 0 | 1

export const deviceTopics = (id: string) => ({
  telemetry: `v1/devices/${id}/telemetry`,
  events: `v1/devices/${id}/events`,
  status: `v1/devices/${id}/status`,
  commands: `v1/devices/${id}/commands`
})

const ONLINE = JSON.stringify('online')
const OFFLINE = JSON.stringify('offline')

/**
 * A CONNACK refusal (MQTT 3.1.1 §3.2.2.3 return code). mqtt.js stops reconnecting after one; for the usual causes,
 * 4 (bad username or password) and 5 (not authorized), retrying could not help anyway.
 */
const isRefusal = (err: Error & { code?: unknown }) => typeof err.code === 'number'

function describeConnectError(err: Error & { code?: unknown }, opts: DeviceClientOptions): Error {
  if (isRefusal(err)) {
    const hint = err.code === 4 || err.code === 5 ? '; check the device id and secret' : ''
    return new Error(`${opts.id}: the broker refused the connection: ${err.message} (CONNACK ${String(err.code)})${hint}`)
  }
  return new Error(`${opts.id}: cannot connect to ${opts.url}: ${err.message}`)
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e))
    )
  })
}

export class DeviceClient {
  private seq = 0
  private closed = false
  readonly topics: ReturnType<typeof deviceTopics>

  private constructor(
    readonly id: string,
    private readonly mqtt: MqttClient
  ) {
    this.topics = deviceTopics(id)
  }

  /** Connect, subscribe to commands and announce `online`. Rejects, without retrying, when the broker refuses the login. */
  static async connect(opts: DeviceClientOptions): Promise<DeviceClient> {
    const topics = deviceTopics(opts.id)
    const timeoutMs = opts.connectTimeoutMs ?? 10_000
    const client = mqtt.connect(opts.url, {
      clientId: opts.id,
      username: opts.id,
      password: opts.secret,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 2000,
      connectTimeout: timeoutMs,
      will: { topic: topics.status, payload: Buffer.from(OFFLINE), qos: 1, retain: true }
    })
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no CONNACK in ${timeoutMs} ms`)), timeoutMs)
        const done = (err?: Error) => {
          clearTimeout(timer)
          client.off('connect', onConnect)
          client.off('error', done)
          if (err) reject(describeConnectError(err, opts))
          else resolve()
        }
        const onConnect = () => done()
        client.on('connect', onConnect)
        client.on('error', done)
      })
    } catch (err) {
      // A late socket error on the abandoned client must not crash the process as an unhandled 'error' event.
      client.on('error', () => {})
      client.end(true)
      throw err
    }

    const device = new DeviceClient(opts.id, client)
    client.on('message', (_topic, payload) => {
      let command: DeviceCommand
      try {
        command = JSON.parse(payload.toString('utf8')) as DeviceCommand
      } catch {
        command = { cmd: '(not JSON)', raw: payload.toString('utf8') }
      }
      opts.onCommand?.(command)
    })
    client.on('error', (err: Error & { code?: unknown }) => {
      // Network errors come and go while mqtt.js reconnects; a refused login ends the reconnecting.
      if (isRefusal(err) && !device.closed) opts.onFatal?.(describeConnectError(err, opts))
    })
    client.on('offline', () => opts.onLink?.(false))
    client.on('connect', () => {
      // The broker may have published the will while we were away: say online again.
      void device.announce().catch(() => {})
      opts.onLink?.(true)
    })
    try {
      await withTimeout(device.announce(), timeoutMs, `${opts.id}: online status`)
      const [grant] = await withTimeout(client.subscribeAsync(topics.commands, { qos: 1 }), timeoutMs, `${opts.id}: subscribe`)
      if (!grant || grant.qos === 128) throw new Error(`${opts.id}: the broker refused the commands subscription`)
    } catch (err) {
      device.closed = true
      client.end(true)
      throw err
    }
    return device
  }

  private announce(): Promise<unknown> {
    return this.mqtt.publishAsync(this.topics.status, ONLINE, { qos: 1, retain: true })
  }

  /** Publish telemetry: one item per values record (an array payload when more than one). */
  telemetry(values: Record<string, number>[], qos: Qos = 1): Promise<Published> {
    return this.publishItems(this.topics.telemetry, values.map((v) => ({ values: v })), qos)
  }

  events(events: SimEvent[], qos: Qos = 1): Promise<Published> {
    return this.publishItems(this.topics.events, events, qos)
  }

  private async publishItems(topic: string, bodies: object[], qos: Qos): Promise<Published> {
    if (bodies.length === 0 || bodies.length > MAX_ITEMS) {
      throw new Error(`${bodies.length} items in one message; the contract allows 1 to ${MAX_ITEMS}`)
    }
    const ts = Date.now()
    const first = this.seq + 1
    const items = bodies.map((body) => ({ ts, seq: ++this.seq, ...body }))
    const payload = JSON.stringify(items.length === 1 ? items[0] : items)
    const bytes = Buffer.byteLength(payload)
    if (bytes > MAX_PAYLOAD_BYTES) throw new Error(`a ${bytes}-byte payload exceeds the contract's ${MAX_PAYLOAD_BYTES} bytes`)
    const last = this.seq
    const started = performance.now()
    await this.mqtt.publishAsync(topic, payload, { qos })
    return { seq: [first, last], ackMs: performance.now() - started }
  }

  /**
   * Say `offline` (retained) and disconnect cleanly, so the broker does not fire the will. If the broker does not
   * acknowledge in time the connection is dropped instead, and the will says it.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return
    this.closed = true
    let clean = false
    if (this.mqtt.connected) {
      clean = await withTimeout(this.mqtt.publishAsync(this.topics.status, OFFLINE, { qos: 1, retain: true }), timeoutMs, 'offline status')
        .then(() => true)
        .catch(() => false)
    }
    // A clean end waits for every in-flight message; when the broker is not answering, do not wait.
    await withTimeout(this.mqtt.endAsync(!clean), timeoutMs, 'disconnect').catch(() => this.mqtt.end(true))
  }
}
