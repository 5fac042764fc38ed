/**
 * Acknowledged means durable (docs/ARCHITECTURE.md), downstream side: InfluxDB is SIGKILLed for 30 s while a device
 * publishes 50 readings a second. The broker keeps acknowledging every reading (they wait in the ingest log), and
 * when InfluxDB is back the backlog drains: every acknowledged reading stored, each exactly once.
 *
 * The test runs its own influxd (temporary data folder, free ports) so the shared instance other test files use
 * in parallel is never stopped.
 */
import { afterAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { Redis } from 'ioredis'
import { CONSUMER_GROUPS } from '../src/app.js'
import { REDIS_URL, dropNames, startTestApp, uniqueNames, waitFor, type TestApp } from './helpers/env.js'
import { startPrivateInflux, type PrivateInflux } from './helpers/processes.js'
import { countReadings, duplicates, storeAt, storedReadings, waitForAllStored } from './helpers/stored-readings.js'

const RATE_PER_S = 50
const BEFORE_OUTAGE_MS = 3_000
const OUTAGE_MS = 30_000
/** A PUBACK slower than this during the outage would mean the broker waits on InfluxDB. */
const MAX_PUBACK_MS = 2_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Entries of the stream a consumer group holds unacknowledged (pending) or has not read yet (lag, Redis 7). */
async function groupBacklog(stream: string, group: string): Promise<{ pending: number; lag: number }> {
  const redis = new Redis(REDIS_URL)
  try {
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
    for (const flat of groups) {
      const info = new Map<string, unknown>()
      for (let i = 0; i < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1])
      if (info.get('name') === group) return { pending: Number(info.get('pending')), lag: Number(info.get('lag')) }
    }
    throw new Error(`no consumer group ${group} on ${stream}`)
  } finally {
    redis.disconnect()
  }
}

describe('InfluxDB down for 30 s while readings flow', () => {
  const names = uniqueNames('outage')
  let influx: PrivateInflux | null = null
  let t: TestApp | null = null
  let client: MqttClient | null = null

  afterAll(async () => {
    client?.end(true)
    await t?.stop()
    await influx?.destroy() // the test's InfluxDB database lives only in the private instance's temporary folder
    await dropNames(names) // PostgreSQL database and Redis keys
  })

  it('keeps acknowledging, loses nothing and drains the backlog when InfluxDB is back', { timeout: 90_000 }, async () => {
    influx = await startPrivateInflux()
    t = await startTestApp(names, { INFLUX_URL: influx.url })
    const store = storeAt(influx.url, names.influxDb)
    const dev = await t.provision('sprinkler_pressure')
    const latecomer = await t.provision('sprinkler_pressure')

    client = mqtt.connect(t.mqttUrl, { clientId: dev.id, username: dev.id, password: dev.secret, protocolVersion: 4, reconnectPeriod: 0 })
    let disconnects = 0
    client.on('close', () => disconnects++)
    await new Promise<void>((resolve, reject) => {
      client!.once('connect', () => resolve())
      client!.once('error', reject)
    })

    // The device: one reading every 20 ms, each with its own seq and ts, for as long as `publishing` is set.
    const topic = `v1/devices/${dev.id}/telemetry`
    const base = Date.now() - 10 * 60_000
    const acked = new Set<number>()
    const failed: string[] = []
    const latencies: { seq: number; ms: number; down: boolean }[] = []
    let influxDown = false
    let publishing = true
    let sent = 0
    const device = (async () => {
      const started = Date.now()
      const inFlight: Promise<void>[] = []
      while (publishing) {
        const seq = sent++
        const down = influxDown
        const at = Date.now()
        const payload = JSON.stringify({ ts: base + seq, seq, values: { pressure_mpa: 0.3 + (seq % 50) / 1000 } })
        inFlight.push(
          client!.publishAsync(topic, payload, { qos: 1 }).then(
            () => {
              acked.add(seq)
              latencies.push({ seq, ms: Date.now() - at, down })
            },
            (err: Error) => void failed.push(`${seq}: ${err.message}`)
          )
        )
        const next = started + sent * (1000 / RATE_PER_S)
        await sleep(Math.max(0, next - Date.now()))
      }
      await Promise.all(inFlight)
    })()

    await waitFor(async () => (await countReadings(store, dev.id)) > 0, 10_000)
    await sleep(BEFORE_OUTAGE_MS)

    // Outage: SIGKILL, so InfluxDB gets no chance to finish anything it was doing.
    const failuresBefore = t.app.writer.stats.failures
    await influx.stop('SIGKILL')
    influxDown = true
    const sentAtOutage = sent
    const lengthAtOutage = await t.app.ingestLog.length()
    const lengths: number[] = []
    const outageEnd = Date.now() + OUTAGE_MS
    while (Date.now() < outageEnd) {
      await sleep(5_000)
      lengths.push(await t.app.ingestLog.length())
      if (lengths.length === 3) {
        // A device connecting in the middle of the outage is authenticated and acknowledged as usual.
        const late = await mqtt.connectAsync(t.mqttUrl, { clientId: latecomer.id, username: latecomer.id, password: latecomer.secret, reconnectPeriod: 0 })
        await late.publishAsync(`v1/devices/${latecomer.id}/telemetry`, JSON.stringify({ ts: base, seq: 1, values: { pressure_mpa: 0.4 } }), { qos: 1 })
        await late.endAsync()
      }
    }
    const sentInOutage = sent - sentAtOutage
    const lengthAtRestart = await t.app.ingestLog.length()

    // The server never stopped accepting: everything published during the outage was acknowledged, promptly.
    const duringOutage = latencies.filter((l) => l.down)
    expect(failed).toEqual([])
    expect(disconnects).toBe(0)
    expect(duringOutage.length).toBeGreaterThanOrEqual(sentInOutage - RATE_PER_S) // all but the last second's, still in flight
    expect(Math.max(...duringOutage.map((l) => l.ms))).toBeLessThan(MAX_PUBACK_MS)
    // The writer saw InfluxDB fail, and the readings waited in the ingest log, which only grew (trim kept them).
    expect(t.app.writer.stats.failures).toBeGreaterThan(failuresBefore)
    for (let i = 1; i < lengths.length; i++) expect(lengths[i]!).toBeGreaterThan(lengths[i - 1]!)
    // Every reading acknowledged during the outage is still in the log (one entry each; trim drops only stored ones).
    expect(lengthAtRestart).toBeGreaterThanOrEqual(duringOutage.length)

    // InfluxDB back on the same data folder and port; the device stops after one more second.
    await influx.start()
    influxDown = false
    await sleep(1_000)
    publishing = false
    await device
    expect(failed).toEqual([])
    expect(acked.size).toBe(sent)

    const drainStarted = Date.now()
    const stored = await waitForAllStored(store, dev.id, acked, 30_000, 250)
    const drainMs = Date.now() - drainStarted

    const distinct = new Set(stored.seqs)
    expect([...acked].filter((s) => !distinct.has(s))).toEqual([])
    expect(duplicates(stored.seqs)).toEqual([])
    expect(stored.count).toBe(distinct.size)
    expect(distinct.size).toBe(sent) // nothing extra either
    expect(stored.times.filter((time, i) => time !== base + stored.seqs[i]!)).toEqual([])
    expect(await storedReadings(store, latecomer.id)).toEqual({ seqs: [1], times: [base], count: 1 })

    // Drained: the writer's consumer group has nothing pending and nothing left to read.
    const backlog = await waitFor(async () => {
      const b = await groupBacklog(`${names.redisPrefix}ingest`, CONSUMER_GROUPS.telemetry)
      return b.pending === 0 && b.lag === 0 ? b : null
    })
    expect(backlog).toEqual({ pending: 0, lag: 0 })

    console.error(
      `durability-influx-outage: ${sent} published, ${acked.size} acknowledged; ${sentInOutage} during the ${OUTAGE_MS} ms outage ` +
        `(slowest PUBACK ${Math.max(...duringOutage.map((l) => l.ms))} ms); log length ${lengthAtOutage} → ${lengthAtRestart}; ` +
        `writer failures ${t.app.writer.stats.failures}; backlog stored ${drainMs} ms after the device stopped`
    )
  })
})
