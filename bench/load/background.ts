/**
 * Background load of the alert-latency phase (bench/lib/alerts.ts): sprinkler_pressure devices, one MQTT connection
 * each, publishing QoS 1 telemetry with a constant, normal pressure (0.32 MPa: no rule can fire on it) at a fixed
 * total rate, open loop (the messages due by now go out whatever the broker's pace, so a slow server shows as a lower
 * acknowledged rate, not as a lower offered one). It runs in a process of its own so the measuring process's event
 * loop stays quiet. Driven over IPC:
 *
 *   parent → {cmd:'start', config}   child connects every device → {type:'connected'}
 *   parent → {cmd:'go'}              publishing starts; {type:'progress'} about once a second
 *   parent → {cmd:'mark', id}        → {type:'mark', id, counters, ackMs (PUBACK latency since the previous mark)}
 *   parent → {cmd:'stop'}            stop offering, wait up to 5 s for PUBACKs, disconnect → {type:'done'}, exit
 *
 * It also stops by itself after `maxSeconds`, and exits when the parent goes away.
 */
import { performance } from 'node:perf_hooks'
import { connectAll, disconnectAll, telemetryPayload, type Connected, type DeviceCredentials } from '../lib/publishers.js'

export interface BackgroundConfig {
  url: string
  devices: DeviceCredentials[]
  /** Messages per second over all devices. */
  rate: number
  /** A device with this many messages unacknowledged skips its turn (counted) rather than queue without bound. */
  maxInFlightPerDevice: number
  /** Hard bound on publishing, whatever the parent says. */
  maxSeconds: number
  connectConcurrency: number
  connectTimeoutMs: number
}

export interface BackgroundCounters {
  /** Turns offered by the schedule (sent + skipped). */
  offered: number
  sent: number
  acked: number
  failed: number
  skipped: number
  inFlight: number
}

export type ParentMessage = { cmd: 'start'; config: BackgroundConfig } | { cmd: 'go' } | { cmd: 'mark'; id: number } | { cmd: 'stop' }

export type ChildMessage =
  | { type: 'connected'; connected: number; failed: number; firstError: string | null; elapsedMs: number }
  | { type: 'progress'; counters: BackgroundCounters; ackedLastSecond: number }
  | { type: 'mark'; id: number; counters: BackgroundCounters; ackMs: { p50: number; p99: number; max: number; n: number } }
  | { type: 'done'; counters: BackgroundCounters; publishSeconds: number }
  | { type: 'error'; message: string }

if (!process.send) throw new Error('bench/load/background.ts runs as a child process with an IPC channel')
const send = (m: ChildMessage) => process.send!(m)

const counters: BackgroundCounters = { offered: 0, sent: 0, acked: 0, failed: 0, skipped: 0, inFlight: 0 }
let clients: Connected[] = []
let config: BackgroundConfig | null = null
let publishing = false
let publishStart = 0
let publishEnd = 0
let stopping = false
/** PUBACK latencies since the last mark, ms. */
let latencies: number[] = []

async function start(c: BackgroundConfig): Promise<void> {
  config = c
  const res = await connectAll(c.url, c.devices, { concurrency: c.connectConcurrency, deadline: performance.now() + c.connectTimeoutMs })
  clients = res.clients
  send({ type: 'connected', connected: res.clients.length, failed: res.failed, firstError: res.firstError, elapsedMs: Math.round(res.elapsedMs) })
}

function go(): void {
  if (!config || publishing || stopping) return
  const c = config
  const n = clients.length
  const seq = new Array<number>(n).fill(0)
  const inFlight = new Array<number>(n).fill(0)
  const topics = clients.map((x) => `v1/devices/${x.deviceId}/telemetry`)
  let cursor = 0
  publishing = true
  publishStart = performance.now()

  const sendOne = () => {
    const i = cursor
    cursor = (cursor + 1) % n
    counters.offered++
    if (inFlight[i]! >= c.maxInFlightPerDevice) {
      counters.skipped++
      return
    }
    inFlight[i]!++
    counters.inFlight++
    counters.sent++
    const t = performance.now()
    clients[i]!.client.publish(topics[i]!, telemetryPayload(seq[i]!++), { qos: 1 }, (err) => {
      inFlight[i]!--
      counters.inFlight--
      if (err) counters.failed++
      else {
        counters.acked++
        latencies.push(performance.now() - t)
      }
    })
  }

  // Open loop on a 5 ms tick: every turn due by now is offered.
  const tick = () => {
    if (!publishing) return
    const elapsed = performance.now() - publishStart
    if (elapsed >= c.maxSeconds * 1000) {
      void stop()
      return
    }
    const due = Math.floor((c.rate * elapsed) / 1000)
    while (counters.offered < due) sendOne()
    setTimeout(tick, 5)
  }
  tick()

  let lastAcked = 0
  const reporter = setInterval(() => {
    if (!publishing) return clearInterval(reporter)
    send({ type: 'progress', counters: { ...counters }, ackedLastSecond: counters.acked - lastAcked })
    lastAcked = counters.acked
  }, 1000)
}

function takeLatencies() {
  const s = Float64Array.from(latencies).sort()
  latencies = []
  const pick = (q: number) => (s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10 : 0)
  return { p50: pick(0.5), p99: pick(0.99), max: s.length ? Math.round(s[s.length - 1]!) : 0, n: s.length }
}

async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  publishing = false
  publishEnd = performance.now()
  const until = performance.now() + 5000
  while (counters.inFlight > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20))
  const publishSeconds = publishStart ? (publishEnd - publishStart) / 1000 : 0
  const final = { ...counters }
  await disconnectAll(clients)
  send({ type: 'done', counters: final, publishSeconds })
  setTimeout(() => process.exit(0), 50)
}

process.on('message', (m: ParentMessage) => {
  switch (m.cmd) {
    case 'start':
      start(m.config).catch((err: Error) => send({ type: 'error', message: err.message }))
      break
    case 'go':
      go()
      break
    case 'mark':
      send({ type: 'mark', id: m.id, counters: { ...counters }, ackMs: takeLatencies() })
      break
    case 'stop':
      void stop()
      break
  }
})
// The parent ended (or was killed): do not outlive it.
process.on('disconnect', () => process.exit(0))
