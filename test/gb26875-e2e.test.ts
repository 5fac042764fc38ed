/**
 * A provisioned UITD over GB/T 26875.3, end to end with real Redis, PostgreSQL and InfluxDB: a fire is confirmed with
 * its serial echoed, lands in InfluxDB and opens an alert; a bad frame and an unknown address are denied and store
 * nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, waitFor, createUnitAt, type TestApp } from './helpers/env.js'
import { Command, encodeAppData, encodeFrame, timeAt } from '../src/ingest/gb26875/index.js'
import { UitdClient } from '../simulators/lib/gb26875-client.js'
import type { Alert } from '../schemas/alerts.js'
import { runUitd } from '../simulators/uitd-gb26875.js'

const ADDRESS = '0a0b0c0d0e0f'
let t: TestApp
let deviceId: string

beforeAll(async () => {
  t = await startTestApp(undefined, { RULE_ENGINE: 'true', GB26875_PORT: '0' })
  const unitId = await createUnitAt(t.api)
  deviceId = `uitd-${ADDRESS}`
  const r = await t.api('POST', '/api/v1/devices', { id: deviceId, unitId, kind: 'uitd', protocol: 'gb26875', gb26875: { address: ADDRESS } })
  expect(r.status).toBe(201)
})
afterAll(async () => {
  await t?.dispose()
})

const connect = (address = ADDRESS) => UitdClient.connect({ host: '127.0.0.1', port: t.app.gb26875!.port, address, timeoutMs: 5000 })
const fire = (status = 0b11) =>
  encodeAppData({
    type: 2,
    objects: [{ sysType: 1, sysAddr: 1, compType: 42, compAddr: 0x00030022, status, description: '五层电梯前室', time: timeAt(Date.now(), 480) }]
  })

describe('GB/T 26875.3 end to end', () => {
  it('confirms a fire with the serial echoed, stores the event and opens a fire alert', async () => {
    const c = await connect()
    try {
      expect(await c.heartbeat()).toMatchObject({ command: Command.confirm })
      const frame = c.frame(Command.sendData, fire())
      const answer = await c.send(frame)
      expect(answer).toMatchObject({ command: Command.confirm, serial: frame.serial, destination: ADDRESS })
      const events = await waitFor(async () => {
        const r = await t.api<{ events: { type: string; point: string; text: string }[] }>('GET', `/api/v1/devices/${deviceId}/events`)
        return r.body.events.length > 0 ? r.body.events : null
      })
      expect(events).toEqual([expect.objectContaining({ type: 'fire', point: `1-1-42-${0x00030022}`, text: '五层电梯前室' })])
      const alert = await waitFor(async () => {
        const r = await t.api<{ items: Alert[] }>('GET', `/api/v1/alerts?deviceId=${deviceId}`)
        return r.body.items.find((a) => a.class === 'fire')
      })
      expect(alert).toMatchObject({ class: 'fire', status: 'open' })
      const device = await waitFor(async () => {
        const r = await t.api<{ online: boolean; lastSeenAt: string | null }>('GET', `/api/v1/devices/${deviceId}`)
        return r.body.online ? r.body : null
      })
      expect(device.lastSeenAt).not.toBeNull()
    } finally {
      c.close()
    }
  })

  it('stores every event of one status word (fault and supervisory at once) through the real ingest log', async () => {
    const c = await connect()
    try {
      expect(await c.sendData({ type: 2, objects: [{ sysType: 1, sysAddr: 1, compType: 23, compAddr: 9, status: 0b1_0101, description: '', time: timeAt(Date.now(), 480) }] })).toMatchObject({ command: Command.confirm })
      const types = await waitFor(async () => {
        const r = await t.api<{ events: { type: string; point: string }[] }>('GET', `/api/v1/devices/${deviceId}/events`)
        const at = r.body.events.filter((e) => e.point === '1-1-23-9').map((e) => e.type)
        return at.length >= 2 ? at.sort() : null
      })
      expect(types).toEqual(['fault', 'supervisory'])
    } finally {
      c.close()
    }
  })

  it('stores a resent frame (same serial, no confirm seen) once', async () => {
    const c = await connect()
    try {
      const frame = c.frame(Command.sendData, encodeAppData({ type: 2, objects: [{ sysType: 1, sysAddr: 1, compType: 23, compAddr: 10, status: 0b11, description: '', time: timeAt(Date.now(), 480) }] }))
      expect(await c.send(frame)).toMatchObject({ command: Command.confirm })
      expect(await c.send(frame)).toMatchObject({ command: Command.confirm })
      const marker = { ...frame, serial: c.nextSerial(), data: encodeAppData({ type: 2, objects: [{ sysType: 1, sysAddr: 1, compType: 23, compAddr: 11, status: 0b11, description: '', time: timeAt(Date.now(), 480) }] }) }
      expect(await c.send(marker)).toMatchObject({ command: Command.confirm })
      const events = await waitFor(async () => {
        const r = await t.api<{ events: { point: string }[] }>('GET', `/api/v1/devices/${deviceId}/events`)
        return r.body.events.some((e) => e.point === '1-1-23-11') ? r.body.events : null
      })
      expect(events.filter((e) => e.point === '1-1-23-10')).toHaveLength(1)
    } finally {
      c.close()
    }
  })

  it('denies a bad checksum and stores nothing', async () => {
    const c = await connect()
    try {
      const before = t.app.ingestLog.appended
      const bytes = encodeFrame(c.frame(Command.sendData, fire(0b101), 4242))
      bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x55
      expect(await c.request(bytes, 4242)).toMatchObject({ command: Command.deny, serial: 4242 })
      expect(t.app.rejections.counts.bad_frame).toBe(1)
      expect(t.app.ingestLog.appended).toBe(before)
    } finally {
      c.close()
    }
  })

  it('denies an unknown address and counts it', async () => {
    const c = await connect('ffffffffffff')
    try {
      const before = t.app.ingestLog.appended
      expect(await c.send(c.frame(Command.sendData, fire()))).toMatchObject({ command: Command.deny })
      expect(t.app.rejections.counts.unknown_device).toBe(1)
      expect(t.app.ingestLog.appended).toBe(before)
      const metrics = await fetch(`http://127.0.0.1:${t.httpPort}/metrics`).then((r) => r.text())
      expect(metrics).toMatch(/firewatch_messages_rejected_total\{reason="unknown_device"\} 1/)
    } finally {
      c.close()
    }
  })

  it('takes the simulator\'s demo: heartbeats, a pressure, a fire, a fault and back to normal, all confirmed', async () => {
    const address = '0a0b0c0d0e10'
    const id = `uitd-${address}`
    const unitId = await createUnitAt(t.api)
    await t.api('POST', '/api/v1/devices', { id, unitId, kind: 'uitd', protocol: 'gb26875', gb26875: { address } })
    const sim = await runUitd({ host: '127.0.0.1', port: t.app.gb26875!.port, address, scenario: 'demo', intervalMs: 20, durationS: 0, pressureMpa: 0.28, quiet: true })
    await waitFor(async () => sim.stats.confirmed >= 5)
    await sim.stop()
    expect(sim.stats).toMatchObject({ denied: 0, unanswered: 0 })
    const types = await waitFor(async () => {
      const r = await t.api<{ events: { type: string }[] }>('GET', `/api/v1/devices/${id}/events`)
      return r.body.events.length >= 3 ? r.body.events.map((e) => e.type).sort() : null
    })
    expect(types).toEqual(['fault', 'fire', 'restore'])
    const readings = await waitFor(async () => {
      const r = await t.api<{ points: { values: { pressure_mpa?: number } }[] }>('GET', `/api/v1/devices/${id}/readings?metric=pressure_mpa`)
      return r.body.points.length > 0 ? r.body.points : null
    })
    expect(readings[0]!.values.pressure_mpa).toBe(0.28)
  })
})
