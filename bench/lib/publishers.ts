/** MQTT device clients (mqtt v5 package): connecting many with bounded concurrency, and windowed QoS 1 publishing. */
import { performance } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'

export interface DeviceCredentials {
  id: string
  secret: string
}

export interface Connected {
  deviceId: string
  client: MqttClient
}

export interface ConnectResult {
  clients: Connected[]
  failed: number
  firstError: string | null
  elapsedMs: number
}

/**
 * Connect every device (client id = username = device id, password = secret, as the device contract says),
 * at most `concurrency` handshakes at a time. Stops starting new ones after `deadline` (a performance.now() time).
 */
export async function connectAll(
  url: string,
  devices: DeviceCredentials[],
  opts: { concurrency: number; deadline: number; onProgress?: (done: number) => void }
): Promise<ConnectResult> {
  const clients: Connected[] = []
  let failed = 0
  let firstError: string | null = null
  let next = 0
  const t0 = performance.now()
  const worker = async () => {
    while (next < devices.length && performance.now() < opts.deadline) {
      const device = devices[next++]!
      try {
        const client = await mqtt.connectAsync(url, {
          clientId: device.id,
          username: device.id,
          password: device.secret,
          protocolVersion: 4,
          clean: true,
          keepalive: 300,
          reconnectPeriod: 0,
          connectTimeout: 30_000
        })
        // Like the server side (src/broker/index.ts): no Nagle delay on small packets, so neither server is judged by
        // 40 ms delayed-ACK stalls of the client.
        const socket = client.stream as unknown as { setNoDelay?: (v: boolean) => void }
        socket.setNoDelay?.(true)
        clients.push({ deviceId: device.id, client })
      } catch (err) {
        failed++
        firstError ??= `${device.id}: ${(err as Error).message}`
      }
      const done = clients.length + failed
      if (done % 100 === 0) opts.onProgress?.(done)
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, devices.length) }, worker))
  return { clients, failed, firstError, elapsedMs: performance.now() - t0 }
}

export async function disconnectAll(clients: Connected[]): Promise<void> {
  await Promise.all(
    clients.map(
      ({ client }) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            client.end(true)
            resolve()
          }, 5000)
          client.end(false, {}, () => {
            clearTimeout(timer)
            resolve()
          })
        })
    )
  )
}

/** A telemetry payload shaped like the device contract (docs/PROTOCOL.md). */
export function telemetryPayload(seq: number): string {
  return `{"ts":${Date.now()},"seq":${seq},"values":{"pressure_mpa":0.32}}`
}

export interface PublishResult {
  /** Messages handed to the clients. */
  sent: number
  /** Messages whose PUBACK came back. */
  acked: number
  /** Publishes that failed (connection closed, broker refused). */
  failed: number
  firstError: string | null
  /** performance.now() just before the first publish. */
  startedAt: number
  /** performance.now() of the last PUBACK. */
  lastAckAt: number
  /** Stopped by the deadline before every message was sent. */
  timedOut: boolean
  /** PUBACK latency percentiles, ms. */
  latencyMs: { p50: number; p99: number; max: number }
}

/**
 * Each client publishes `perClient` QoS 1 messages on its own `v1/devices/{id}/telemetry`, as fast as PUBACKs come
 * back, with at most `window` unacknowledged at a time. Seqs start at `seqBase`. Bounded by `deadline`.
 */
export async function publishWindowed(
  clients: Connected[],
  opts: { perClient: number; window: number; seqBase: number; deadline: number; live?: { acked: number } }
): Promise<PublishResult> {
  const latencies = new Float64Array(clients.length * opts.perClient)
  let sent = 0
  let acked = 0
  let failed = 0
  let firstError: string | null = null
  let lastAckAt = 0
  let timedOut = false
  const startedAt = performance.now()

  const run = ({ deviceId, client }: Connected) =>
    new Promise<void>((resolve) => {
      const topic = `v1/devices/${deviceId}/telemetry`
      let mine = 0
      let inflight = 0
      let stopped = false
      const onClose = () => {
        stopped = true
        if (inflight === 0) finish()
      }
      const finish = () => {
        client.removeListener('close', onClose)
        resolve()
      }
      const pump = () => {
        while (!stopped && inflight < opts.window && mine < opts.perClient) {
          if (performance.now() > opts.deadline) {
            timedOut = true
            stopped = true
            break
          }
          const seq = opts.seqBase + mine++
          const slot = sent++
          inflight++
          const t = performance.now()
          client.publish(topic, telemetryPayload(seq), { qos: 1 }, (err) => {
            inflight--
            if (err) {
              failed++
              firstError ??= `${deviceId}: ${err.message}`
              stopped = true
            } else {
              acked++
              if (opts.live) opts.live.acked = acked
              lastAckAt = performance.now()
              latencies[slot] = lastAckAt - t
            }
            if (!stopped) pump()
            if (inflight === 0 && (stopped || mine >= opts.perClient)) finish()
          })
        }
        if (inflight === 0) finish()
      }
      client.on('close', onClose)
      pump()
    })

  // A client whose connection dies with messages in flight never calls back for them; the deadline ends the wait.
  const guard = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (performance.now() > opts.deadline + 5000) {
        timedOut = true
        clearInterval(timer)
        resolve()
      }
    }, 250)
    timer.unref()
    void Promise.all(clients.map(run)).then(() => {
      clearInterval(timer)
      resolve()
    })
  })
  await guard

  const done = latencies.subarray(0, sent).filter((v) => v > 0).sort()
  const pick = (q: number) => (done.length ? done[Math.min(done.length - 1, Math.floor(q * done.length))]! : 0)
  return {
    sent,
    acked,
    failed,
    firstError,
    startedAt,
    lastAckAt: lastAckAt || performance.now(),
    timedOut,
    latencyMs: { p50: pick(0.5), p99: pick(0.99), max: done.length ? done[done.length - 1]! : 0 }
  }
}
