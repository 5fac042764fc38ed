import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { dropNames, startTestApp, waitFor, type TestApp } from './helpers/env.js'
import { startModbusGateway, type ModbusGatewayHandle } from '../simulators/modbus-slaves.js'

// Twice the timeout and then some: a silent slave's poll (its timeout) must end well before its next tick even when
// the machine is busy with the rest of the suite.
const INTERVAL = 500
const TIMEOUT = 150
type Points = { points: { ts: number; values: Record<string, number | null> }[] }
type Events = { events: { ts: number; type: string; point: string; text: string; seq: number | null }[] }

describe('Modbus polling against the simulator over TCP', () => {
  let t: TestApp
  let gw: ModbusGatewayHandle
  let other: ModbusGatewayHandle
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    gw = await startModbusGateway({
      slaves: [
        { unitId: 1, kind: 'pressure', scenario: 'normal' },
        { unitId: 2, kind: 'pressure', scenario: 'normal' },
        { unitId: 3, kind: 'pressure', scenario: 'normal' },
        { unitId: 4, kind: 'tank', scenario: 'filling' }
      ],
      stepMs: 200
    })
    other = await startModbusGateway({ slaves: [{ unitId: 1, kind: 'pressure', scenario: 'normal' }] })
    t = await startTestApp(undefined, { MODBUS_TIMEOUT_MS: String(TIMEOUT), MODBUS_RELOAD_MS: '60000' })
    const unitId = await t.api<{ id: string }>('POST', '/api/v1/units', {
      jurisdictionId: (await t.api<{ id: string }>('POST', '/api/v1/jurisdictions', { name: 'C', level: 'city' })).body.id,
      name: 'Pump room',
      address: '1 Test Road',
      category: 'key',
      contactName: 'Duty',
      contactPhone: '0571-0000000'
    })
    const add = async (name: string, kind: string, port: number, modbusUnit: number) => {
      const res = await t.api<{ id: string; secret: string | null; modbus: unknown }>('POST', '/api/v1/devices', {
        id: `mb-${name}-${randomBytes(3).toString('hex')}`,
        unitId: unitId.body.id,
        kind,
        protocol: 'modbus',
        modbus: { host: '127.0.0.1', port, unitId: modbusUnit, pollIntervalMs: INTERVAL }
      })
      expect(res.status).toBe(201)
      expect(res.body.secret).toBeNull()
      expect(res.body.modbus).toEqual({ host: '127.0.0.1', port, unitId: modbusUnit, pollIntervalMs: INTERVAL })
      ids[name] = res.body.id
    }
    await add('p1', 'sprinkler_pressure', gw.port, 1)
    await add('p2', 'sprinkler_pressure', gw.port, 2)
    await add('p3', 'sprinkler_pressure', gw.port, 3)
    await add('tank', 'water_level', gw.port, 4)
    await add('far', 'sprinkler_pressure', other.port, 1)
  })
  afterAll(async () => {
    await t?.stop()
    await gw?.close()
    await other?.close()
    if (t) await dropNames(t.names)
  })

  const readings = (id: string, q = '') => t.api<Points>('GET', `/api/v1/devices/${id}/readings${q}`)
  const events = (id: string) => t.api<Events>('GET', `/api/v1/devices/${id}/events`)

  it('serves polled readings from the readings endpoint, as MQTT readings', async () => {
    const p = await waitFor(async () => {
      const r = await readings(ids.p1!)
      return r.body.points.length >= 3 ? r.body.points : null
    })
    for (const point of p) {
      expect(point.values.pressure_mpa).toBeGreaterThanOrEqual(0.25)
      expect(point.values.pressure_mpa).toBeLessThanOrEqual(0.4)
      expect(point.values.temperature_c).toBeGreaterThan(5)
    }
    // ts is the planned poll time: ticks one interval apart.
    const gaps = p.slice(1).map((x, i) => x.ts - p[i]!.ts)
    expect(gaps.every((g) => g % INTERVAL === 0)).toBe(true)
    // Same measurement and fields as MQTT: readings with a seq per device.
    const rows = await t.app.store.query(`SELECT "pressure_mpa", "seq" FROM "readings" WHERE "device_id" = '${ids.p1}'`)
    const seqs = rows[0]!.values.map((r) => r[2] as number)
    expect(new Set(seqs).size).toBe(seqs.length)

    const tank = await waitFor(async () => {
      const r = await readings(ids.tank!, '?metric=level_m')
      return r.body.points.length >= 2 ? r.body.points : null
    })
    expect(tank[0]!.values.level_m).toBeGreaterThan(0.9)
    expect(tank[0]!.values.level_m).toBeLessThan(4.6)
  })

  it('raises a fault within three poll intervals for a slave that stops answering, keeps the others on schedule, restores it', async () => {
    await waitFor(async () => (await readings(ids.p2!)).body.points.length >= 1)
    t.app.modbus.takeLags()
    const silentFrom = Date.now()
    gw.setFault(2, { kind: 'silent' })
    const fault = await waitFor(async () => (await events(ids.p2!)).body.events.find((e) => e.type === 'fault'), 10_000, 50)
    expect(fault).toMatchObject({ point: 'modbus', text: expect.stringContaining(`no answer within ${TIMEOUT} ms`) })
    // The event's ts is the planned time of the poll that failed.
    expect(fault.ts - silentFrom).toBeLessThanOrEqual(3 * INTERVAL)

    // The other slaves of that gateway missed no tick while it was silent, and none was late beyond its timeout.
    await new Promise((r) => setTimeout(r, 4 * INTERVAL))
    const from = new Date(silentFrom + INTERVAL).toISOString()
    const to = new Date(Date.now() - INTERVAL).toISOString()
    for (const id of [ids.p1!, ids.p3!, ids.far!]) {
      const pts = (await readings(id, `?metric=pressure_mpa&from=${from}&to=${to}`)).body.points
      expect(pts.length).toBeGreaterThanOrEqual(3)
      expect(pts.slice(1).map((x, i) => x.ts - pts[i]!.ts)).toEqual(pts.slice(1).map(() => INTERVAL))
    }
    const lags = t.app.modbus.takeLags()
    // The missed-tick check above is the property; the lag bound also absorbs event-loop stalls of a busy CI machine.
    expect(Math.max(...lags)).toBeLessThan(INTERVAL * 2)
    expect(t.app.modbus.stats().overlapped).toBe(0)

    gw.setFault(2, { kind: 'none' })
    const restore = await waitFor(async () => (await events(ids.p2!)).body.events.find((e) => e.type === 'restore'), 10_000, 50)
    expect(restore).toMatchObject({ point: 'modbus', text: 'communication restored' })
    // No reading was invented while it was silent.
    const during = (await readings(ids.p2!, `?from=${new Date(fault.ts).toISOString()}&to=${new Date(restore.ts - 1).toISOString()}`)).body.points
    expect(during).toEqual([])
  })

  it('reports a Modbus exception and a dropped gateway connection as faults, and restores', async () => {
    gw.setFault(3, { kind: 'exception', code: 4 })
    const ex = await waitFor(async () => (await events(ids.p3!)).body.events.find((e) => e.type === 'fault'), 10_000, 50)
    expect(ex.text).toContain('Modbus exception 4 (server device failure)')
    gw.setFault(3, { kind: 'none' })
    await waitFor(async () => (await events(ids.p3!)).body.events.find((e) => e.type === 'restore'), 10_000, 50)

    gw.setFault(4, { kind: 'drop' })
    const drop = await waitFor(async () => (await events(ids.tank!)).body.events.find((e) => e.type === 'fault'), 10_000, 50)
    // A busy machine may see the next request time out before it sees the close: either way a fault, never a zero.
    expect(drop.text).toMatch(/communication fault: .*(closed|not connected|no answer within)/)
    gw.setFault(4, { kind: 'none' })
    await waitFor(async () => (await events(ids.tank!)).body.events.find((e) => e.type === 'restore'), 15_000, 100)
    // The other gateway never noticed.
    expect((await events(ids.far!)).body.events).toEqual([])
  })

  it('refuses a modbus device without a target, and a target for another protocol, naming the field', async () => {
    const unitId = (await t.provision('sprinkler_pressure')).unitId
    const noTarget = await t.api('POST', '/api/v1/devices', { unitId, kind: 'sprinkler_pressure', protocol: 'modbus' })
    expect(noTarget).toMatchObject({ status: 400, body: { field: 'modbus' } })
    const mqtt = await t.api('POST', '/api/v1/devices', {
      unitId,
      kind: 'sprinkler_pressure',
      modbus: { host: '127.0.0.1', port: 502, unitId: 1 }
    })
    expect(mqtt).toMatchObject({ status: 400, body: { field: 'modbus' } })
    const badUnit = await t.api('POST', '/api/v1/devices', {
      unitId,
      kind: 'sprinkler_pressure',
      protocol: 'modbus',
      modbus: { host: '127.0.0.1', port: 502, unitId: 0 }
    })
    expect(badUnit.status).toBe(400)
  })

  it('drops a target removed from the registry without a restart', async () => {
    const before = t.app.modbus.stats().targets
    const db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
    await db.connect()
    try {
      await db.query('DELETE FROM devices WHERE id = $1', [ids.far])
    } finally {
      await db.end()
    }
    await t.app.modbus.reload()
    expect(t.app.modbus.stats()).toMatchObject({ targets: before - 1, gateways: 1 })
  })
})
