/**
 * Gateway connection handling and fault state, against the simulator (and raw TCP servers for broken gateways)
 * over TCP and a real Redis: the pollers without the rest of the app, so each case takes a second or two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import path from 'node:path'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { projectRoot } from '../src/config/index.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { IngestLog } from '../src/ingest/ingest-log.js'
import { Rejections } from '../src/ingest/rejections.js'
import type { IngestMessage } from '../src/ingest/types.js'
import { ModbusPollers, type ModbusTarget } from '../src/ingest/modbus/index.js'
import { Gateway } from '../src/ingest/modbus/gateway.js'
import { startModbusGateway, type ModbusGatewayHandle } from '../simulators/modbus-slaves.js'
import { dropRedisPrefix, REDIS_URL, uniqueNames, waitFor } from './helpers/env.js'

const INTERVAL = 200
const TIMEOUT = 150
const profiles = loadProfiles(path.join(projectRoot, 'devices'))

/** Log lines at warn and above, as objects, to check what the pollers say. */
function captureLog() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) })
  return { log, lines }
}

/** A TCP server that does `onConnection` with each socket; the sockets are destroyed on close. */
async function rawServer(onConnection: (s: net.Socket) => void): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  let n = 0
  const server = net.createServer((s) => {
    n++
    sockets.add(s)
    s.on('error', () => undefined)
    s.on('close', () => sockets.delete(s))
    onConnection(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => n,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    }
  }
}

describe('Modbus gateways and fault state', () => {
  const names = uniqueNames('mbgw')
  let redis: Redis
  let sim: ModbusGatewayHandle
  const messages: IngestMessage[] = []
  const started: ModbusPollers[] = []

  beforeAll(async () => {
    redis = new Redis(REDIS_URL)
    sim = await startModbusGateway({
      slaves: [1, 2, 3, 5, 6].map((unitId) => ({ unitId, kind: 'pressure' as const, scenario: 'normal' as const })),
      stepMs: 200
    })
  })
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()))
    await sim?.close()
    await dropRedisPrefix(names.redisPrefix)
    redis?.disconnect()
  })

  const target = (deviceId: string, port: number, unitId: number, host = '127.0.0.1', profile = 'sprinkler_pressure'): ModbusTarget => ({
    deviceId,
    unitId: 'u',
    profile,
    modbus: { host, port, unitId, pollIntervalMs: INTERVAL }
  })
  const pollers = async (targets: ModbusTarget[], log = pino({ level: 'silent' })) => {
    const real = new IngestLog(redis, { prefix: names.redisPrefix })
    const ingestLog = { append: (m: IngestMessage) => (messages.push(m), real.append(m)) } as unknown as IngestLog
    const p = new ModbusPollers({ targets: async () => targets, profiles, ingestLog, rejections: new Rejections(log), log, redis, redisPrefix: names.redisPrefix, timeoutMs: TIMEOUT, reloadMs: 3_600_000 })
    started.push(p)
    await p.start()
    return p
  }
  const of = (deviceId: string, type: IngestMessage['type'], after = 0) =>
    messages.filter((m) => m.deviceId === deviceId && m.type === type && m.rx >= after).flatMap((m) => m.items as { type?: string; text?: string; values?: Record<string, number> }[])

  it('reopens the connection after a malformed reply: the other slaves read again at once', async () => {
    const { log, lines } = captureLog()
    const p = await pollers([target('gw-1', sim.port, 1), target('gw-2', sim.port, 2), target('gw-3', sim.port, 3)], log)
    await waitFor(async () => of('gw-1', 'telemetry').length >= 1 && of('gw-2', 'telemetry').length >= 1, 5000, 20)
    sim.setFault(3, { kind: 'malformed' })
    const fault = await waitFor(async () => of('gw-3', 'event').find((e) => e.type === 'fault'), 5000, 20)
    expect(fault.text).toContain('communication fault: malformed answer: byte count')
    expect(lines.some((l) => l.gateway === `127.0.0.1:${sim.port}` && String(l.reason).includes('malformed answer'))).toBe(true)
    // Units 1 and 2 go on reading on the reopened connection while unit 3 keeps answering garbage.
    const from = Date.now()
    await waitFor(async () => of('gw-1', 'telemetry', from).length >= 3 && of('gw-2', 'telemetry', from).length >= 3, 4 * INTERVAL + 1000, 20)
    sim.setFault(3, { kind: 'none' })
    await waitFor(async () => of('gw-3', 'event').find((e) => e.type === 'restore'), 5000, 20)
    const t0 = performance.now()
    await p.stop()
    expect(performance.now() - t0).toBeLessThan(TIMEOUT)
  })

  it('keeps a fault in Redis: pollers started again restore it when the slave answers', async () => {
    const key = `${names.redisPrefix}modbus:faulted`
    sim.setFault(5, { kind: 'silent' })
    const p1 = await pollers([target('gw-5', sim.port, 5)])
    await waitFor(async () => of('gw-5', 'event').find((e) => e.type === 'fault'), 5000, 20)
    // The fault event and the fault marker are two writes: the marker follows the event.
    await waitFor(async () => (await redis.sismember(key, 'gw-5')) === 1, 2000, 20)
    await p1.stop()
    sim.setFault(5, { kind: 'none' })
    const p2 = await pollers([target('gw-5', sim.port, 5)])
    const restore = await waitFor(async () => of('gw-5', 'event').find((e) => e.type === 'restore'), 5000, 20)
    expect(restore.text).toBe('communication restored')
    await waitFor(async () => (await redis.sismember(key, 'gw-5')) === 0, 2000, 20)
    await p2.stop()
  })

  it('drops a NaN from a float register and keeps the other metrics of the reading', async () => {
    const tanks = await startModbusGateway({ slaves: [{ unitId: 1, kind: 'tank', scenario: 'filling' }] })
    try {
      const { log, lines } = captureLog()
      tanks.setValue(1, 'level_m', NaN)
      const p = await pollers([target('gw-tank', tanks.port, 1, '127.0.0.1', 'water_level')], log)
      const reading = await waitFor(async () => of('gw-tank', 'telemetry')[0], 5000, 20)
      expect(Object.keys(reading.values!)).toEqual(['temperature_c'])
      expect(lines.find((l) => l.deviceId === 'gw-tank' && l.metric === 'level_m')).toMatchObject({ level: 40 })
      expect(of('gw-tank', 'event')).toEqual([])
      await p.stop()
    } finally {
      await tanks.close()
    }
  })

  it('faults every slave of a gateway that accepts but never answers, in a time independent of their number, and stops at once', async () => {
    const silent = await rawServer(() => undefined)
    try {
      const ids = [1, 2, 3, 4, 5, 6, 7, 8].map((u) => `gw-silent-${u}`)
      const from = Date.now()
      const p = await pollers(ids.map((id, i) => target(id, silent.port, i + 1)))
      await waitFor(async () => ids.every((id) => of(id, 'event').some((e) => e.type === 'fault')), 4000, 20)
      expect(Date.now() - from).toBeLessThan(3000)
      const t0 = performance.now()
      await p.stop()
      expect(performance.now() - t0).toBeLessThan(TIMEOUT)
    } finally {
      await silent.close()
    }
  })

  it('shares one connection between host names differing in case', async () => {
    const p = await pollers([target('gw-a', sim.port, 6, 'LOCALHOST'), target('gw-b', sim.port, 6, 'localhost')])
    expect(p.stats().gateways).toBe(1)
    await p.stop()
  })

  it('backs off from a gateway that accepts and closes at once, and says why it cannot connect', async () => {
    const full = await rawServer((s) => s.destroy())
    const g = new Gateway({ host: '127.0.0.1', port: full.port, minBackoffMs: 50, maxBackoffMs: 10_000 })
    const refused = new Gateway({ host: '127.0.0.1', port: (await rawServer(() => undefined).then(async (r) => (await r.close(), r))).port, minBackoffMs: 50 })
    const reasons: string[] = []
    refused.on('unreachable', (reason: string) => reasons.push(reason))
    g.start()
    refused.start()
    await new Promise((r) => setTimeout(r, 1000))
    // 0, 50, 150, 350, 750 ms: five attempts, not one every 50 ms.
    expect(full.connections()).toBeLessThanOrEqual(6)
    expect(reasons.length).toBeGreaterThanOrEqual(3)
    expect(reasons.length).toBeLessThanOrEqual(6)
    expect(reasons[0]).toContain('ECONNREFUSED')
    await Promise.all([g.close(), refused.close(), full.close()])
  })

  it('names a late or mismatched answer as such, not as a timeout', async () => {
    // Answers every request with transaction id + 1000: a reply to some other request.
    const wrongId = await rawServer((s) =>
      s.on('data', (req: Buffer) => {
        const reply = Buffer.from([0, 0, 0, 0, 0, 7, req[6]!, 3, 4, 0, 1, 0, 2])
        reply.writeUInt16BE((req.readUInt16BE(0) + 1000) & 0xffff, 0)
        s.write(reply)
      })
    )
    const g = new Gateway({ host: '127.0.0.1', port: wrongId.port, timeoutMs: TIMEOUT })
    g.start()
    await waitFor(async () => g.connected, 2000, 10)
    await expect(g.read(1, 'holding_registers', 0, 2)).rejects.toThrow('late or mismatched answer')
    await Promise.all([g.close(), wrongId.close()])
  })
})
