/**
 * Acknowledged means durable (docs/ARCHITECTURE.md): the server process is SIGKILLed while a device publishes
 * 10,000 QoS 1 readings, then started again on the same ports. Every reading the device saw acknowledged must end up
 * in InfluxDB, each exactly once.
 */
import { afterAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { Redis } from 'ioredis'
import { INFLUX_URL, REDIS_URL, apiAt, dropNames, provisionAt, testEnv, uniqueNames, waitFor } from './helpers/env.js'
import { freePorts, killAll, startServerProcess, type ChildHandle } from './helpers/processes.js'
import { duplicates, storeAt, waitForAllStored } from './helpers/stored-readings.js'

const TOTAL = 10_000
const KILL_AFTER_ACKS = 3_000
/** Publishes awaiting their PUBACK at any time, so the kill lands part way through. */
const WINDOW = 200

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('the server SIGKILLed while a device publishes 10,000 QoS 1 readings', () => {
  const names = uniqueNames('sigkill')
  let client: MqttClient | null = null
  let server: ChildHandle | null = null

  /** Entries ever appended to the ingest log (Redis 7 keeps the count across trims). */
  const entriesAdded = async () => {
    const redis = new Redis(REDIS_URL)
    try {
      const info = (await redis.xinfo('STREAM', `${names.redisPrefix}ingest`)) as unknown[]
      return Number(info[info.indexOf('entries-added') + 1])
    } finally {
      redis.disconnect()
    }
  }

  afterAll(async () => {
    client?.end(true)
    await killAll()
    await dropNames(names)
  })

  it('stores every acknowledged reading in InfluxDB exactly once after a restart', { timeout: 90_000 }, async () => {
    const [mqttPort, httpPort] = (await freePorts(2)) as [number, number]
    const env = testEnv(names, { MQTT_PORT: String(mqttPort), HTTP_PORT: String(httpPort), LOG_LEVEL: 'info' })
    server = await startServerProcess(env)
    const dev = await provisionAt(apiAt(`http://127.0.0.1:${httpPort}`))

    client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: dev.id,
      username: dev.id,
      password: dev.secret,
      protocolVersion: 4,
      reconnectPeriod: 100,
      connectTimeout: 5_000
    })
    let connects = 0
    client.on('connect', () => connects++)
    client.on('error', () => {}) // ECONNREFUSED while the server is down; mqtt.js keeps reconnecting
    await waitFor(async () => connects > 0, 10_000)

    const topic = `v1/devices/${dev.id}/telemetry`
    const base = Date.now() - 5 * 60_000 // distinct ts per seq: base + seq
    const acked = new Set<number>()
    const failed = new Map<number, string>()
    let inflight = 0
    let wake: (() => void) | null = null
    let restart: Promise<void> | null = null
    let restartFailed = false
    let ackedAtKill = 0
    let appendedAtKill = 0
    const killAndRestart = async () => {
      ackedAtKill = acked.size
      await server!.kill('SIGKILL')
      appendedAtKill = await entriesAdded()
      await sleep(500) // publishes go on meanwhile: refused connections, queued in the client
      server = await startServerProcess(env)
    }

    const started = Date.now()
    for (let seq = 0; seq < TOTAL; seq++) {
      while (inflight >= WINDOW && !restartFailed) await new Promise<void>((r) => (wake = r))
      if (restartFailed) break
      inflight++
      const payload = JSON.stringify({ ts: base + seq, seq, values: { pressure_mpa: 0.3 + (seq % 100) / 1000 } })
      client.publish(topic, payload, { qos: 1 }, (err) => {
        inflight--
        if (err) failed.set(seq, err.message)
        else acked.add(seq)
        if (!restart && acked.size >= KILL_AFTER_ACKS) {
          restart = killAndRestart()
          // Rethrown by `await restart` below; meanwhile stop publishing.
          restart.catch(() => {
            restartFailed = true
            wake?.()
          })
        }
        wake?.()
      })
    }
    await waitFor(async () => inflight === 0 || restartFailed, 60_000, 50)
    expect(restart, 'the server was killed part way through').not.toBeNull()
    await restart
    const publishMs = Date.now() - started

    // The client reconnected to the new process (and the new process accepted everything after the kill).
    expect(connects).toBeGreaterThanOrEqual(2)
    expect(ackedAtKill).toBeGreaterThanOrEqual(KILL_AFTER_ACKS)
    expect(ackedAtKill).toBeLessThan(TOTAL)
    expect(acked.size).toBeGreaterThan(ackedAtKill)

    const store = storeAt(INFLUX_URL, names.influxDb)
    const stored = await waitForAllStored(store, dev.id, acked, 30_000, 500)

    const distinct = new Set(stored.seqs)
    // Every acknowledged reading is stored ...
    expect([...acked].filter((s) => !distinct.has(s))).toEqual([])
    // ... once: no seq at two points, and InfluxDB's own count agrees with the distinct seqs.
    expect(duplicates(stored.seqs)).toEqual([])
    expect(stored.count).toBe(distinct.size)
    // ... at the time the device gave it (its ts, not a server time).
    expect(stored.times.filter((t, i) => t !== base + stored.seqs[i]!)).toEqual([])
    // Nothing that was never published appears.
    expect([...distinct].filter((s) => s < 0 || s >= TOTAL)).toEqual([])

    // The ingest log took each reading once: the resent in-flight messages were recognised as duplicates.
    expect(await entriesAdded()).toBe(distinct.size)

    console.error(
      `durability-sigkill: published ${TOTAL} in ${publishMs} ms; killed after ${ackedAtKill} acks; ` +
        `${acked.size} acknowledged, ${failed.size} failed (${[...new Set(failed.values())].join('; ') || 'none'}); ` +
        `${distinct.size} stored; ${connects} connects; ${appendedAtKill} in the ingest log at the kill`
    )
  })
})
