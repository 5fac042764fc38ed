/** The admin API: registry create/list/get, validation errors naming the field, auth, OpenAPI. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './helpers/env.js'

let t: TestApp
beforeAll(async () => {
  t = await startTestApp()
  await t.api('POST', '/api/v1/jurisdictions', { id: 'hz', name: '杭州市', level: 'city' })
  await t.api('POST', '/api/v1/jurisdictions', { id: 'hz-xh', parentId: 'hz', name: '西湖区', level: 'district' })
  await t.api('POST', '/api/v1/jurisdictions', { id: 'hz-sc', parentId: 'hz', name: '上城区', level: 'district' })
  await t.api('POST', '/api/v1/jurisdictions', { id: 'hz-xh-bs', parentId: 'hz-xh', name: '北山街道', level: 'street' })
})
afterAll(async () => {
  await t?.dispose()
})

const unit = (over: Record<string, unknown> = {}) => ({
  jurisdictionId: 'hz-xh-bs',
  name: '湖滨银泰',
  address: '延安路 258 号',
  category: 'high_risk',
  latitude: 30.258,
  longitude: 120.164,
  contactName: '值班经理',
  contactPhone: '0571-87000000',
  ...over
})

describe('jurisdictions', () => {
  it('keeps the tree and its path', async () => {
    const r = await t.api<{ path: string[]; level: string }>('GET', '/api/v1/jurisdictions/hz-xh-bs')
    expect(r.status).toBe(200)
    expect(r.body.path).toEqual(['hz', 'hz-xh', 'hz-xh-bs'])
  })

  it('lists a subtree', async () => {
    const r = await t.api<{ items: { id: string }[]; total: number }>('GET', '/api/v1/jurisdictions?within=hz-xh')
    expect(r.body.items.map((j) => j.id)).toEqual(['hz-xh', 'hz-xh-bs'])
    expect(r.body.total).toBe(2)
  })

  it('refuses a street directly under a city, naming parentId', async () => {
    const r = await t.api('POST', '/api/v1/jurisdictions', { parentId: 'hz', name: 'x', level: 'street' })
    expect(r).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'parentId' } })
  })

  it('refuses a duplicate id with 409', async () => {
    const r = await t.api('POST', '/api/v1/jurisdictions', { id: 'hz', name: 'again', level: 'city' })
    expect(r).toMatchObject({ status: 409, body: { code: 'FW_ERR_CONFLICT' } })
  })
})

describe('units', () => {
  it('creates, gets and lists by jurisdiction subtree', async () => {
    const created = await t.api<{ id: string }>('POST', '/api/v1/units', unit({ id: 'u-yintai' }))
    expect(created.status).toBe(201)
    const got = await t.api('GET', '/api/v1/units/u-yintai')
    expect(got.body).toMatchObject({ id: 'u-yintai', category: 'high_risk', latitude: 30.258, jurisdictionId: 'hz-xh-bs' })
    const inDistrict = await t.api<{ items: { id: string }[] }>('GET', '/api/v1/units?jurisdictionId=hz-xh')
    expect(inDistrict.body.items.map((u) => u.id)).toContain('u-yintai')
    const elsewhere = await t.api<{ items: unknown[] }>('GET', '/api/v1/units?jurisdictionId=hz-sc')
    expect(elsewhere.body.items).toEqual([])
  })

  const bad: [string, Record<string, unknown>, string][] = [
    ['a missing field', unit({ contactName: undefined }), 'contactName'],
    ['a bad category', unit({ category: 'very_risky' }), 'category'],
    ['a latitude out of range', unit({ latitude: 123 }), 'latitude'],
    ['an unknown field', unit({ owner: 'x' }), 'owner'],
    ['a jurisdiction that does not exist', unit({ jurisdictionId: 'nowhere' }), 'jurisdictionId']
  ]
  for (const [what, body, field] of bad) {
    it(`answers 400 naming ${field} for ${what}, and creates nothing`, async () => {
      const before = await t.api<{ total: number }>('GET', '/api/v1/units')
      const r = await t.api<{ field: string; message: string }>('POST', '/api/v1/units', JSON.parse(JSON.stringify(body)))
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({ code: 'FW_ERR_VALIDATION', field })
      expect(r.body.message).toContain(field)
      expect((await t.api<{ total: number }>('GET', '/api/v1/units')).body.total).toBe(before.body.total)
    })
  }
})

describe('devices', () => {
  it('returns the secret once, never again', async () => {
    await t.api('POST', '/api/v1/units', unit({ id: 'u-dev' }))
    const created = await t.api<{ secret: string; profile: string; protocol: string; online: boolean }>('POST', '/api/v1/devices', {
      id: 'panel-1',
      unitId: 'u-dev',
      kind: 'alarm_panel'
    })
    expect(created.status).toBe(201)
    expect(created.body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(created.body).toMatchObject({ profile: 'alarm_panel', protocol: 'mqtt', online: false })
    const got = await t.api<Record<string, unknown>>('GET', '/api/v1/devices/panel-1')
    expect(got.body).not.toHaveProperty('secret')
    const list = await t.api<{ items: Record<string, unknown>[] }>('GET', '/api/v1/devices?unitId=u-dev')
    expect(list.body.items).toHaveLength(1)
    expect(list.body.items[0]).not.toHaveProperty('secret')
  })

  it('issues no secret to a polled Modbus device', async () => {
    const r = await t.api<{ secret: string | null }>('POST', '/api/v1/devices', {
      unitId: 'u-dev',
      kind: 'water_level',
      protocol: 'modbus',
      // A port nothing listens on: the poller only reconnects in the background.
      modbus: { host: '127.0.0.1', port: 9, unitId: 1 }
    })
    expect(r.status).toBe(201)
    expect(r.body.secret).toBeNull()
  })

  it.each([
    [{ unitId: 'u-dev', kind: 'toaster' }, 'kind'],
    [{ unitId: 'u-dev', kind: 'smoke_detector', protocol: 'modbus' }, 'protocol'],
    [{ unitId: 'u-dev', kind: 'smoke_detector', profile: 'sprinkler_pressure' }, 'profile'],
    [{ unitId: 'nowhere', kind: 'smoke_detector' }, 'unitId'],
    [{ id: 'has/slash', unitId: 'u-dev', kind: 'smoke_detector' }, 'id']
  ])('answers 400 for %j naming %s', async (body, field) => {
    const r = await t.api('POST', '/api/v1/devices', body)
    expect(r).toMatchObject({ status: 400, body: { field } })
  })

  it.each([
    [{ host: '127.0.0.1', port: 502 }, 'modbus.unitId'],
    [{ host: '999.1.1.1', port: 502, unitId: 1 }, 'modbus.host'],
    [{ host: '-', port: 502, unitId: 1 }, 'modbus.host'],
    [{ host: 'gw.example', port: 502, unitId: 1, pollInterval: 5 }, 'modbus.pollInterval']
  ])('names the nested field of a bad Modbus target %j: %s', async (modbus, field) => {
    const r = await t.api<{ field: string; message: string }>('POST', '/api/v1/devices', {
      unitId: 'u-dev',
      kind: 'water_level',
      protocol: 'modbus',
      modbus
    })
    expect(r).toMatchObject({ status: 400, body: { field } })
    expect(r.body.message).toContain(field)
  })

  it('registers a GB/T 26875.3 UITD by its address, once, with no secret', async () => {
    const r = await t.api<{ secret: string | null; gb26875: { address: string } }>('POST', '/api/v1/devices', {
      id: 'uitd-gb-1',
      unitId: 'u-dev',
      kind: 'uitd',
      protocol: 'gb26875',
      gb26875: { address: '385B01000000' }
    })
    expect(r.status).toBe(201)
    expect(r.body.secret).toBeNull()
    expect(r.body.gb26875).toEqual({ address: '385b01000000' })
    expect(await t.app.registry.findGb26875Device('385b01000000')).toEqual({ deviceId: 'uitd-gb-1', unitId: 'u-dev', profile: 'uitd' })
    const again = await t.api('POST', '/api/v1/devices', { unitId: 'u-dev', kind: 'uitd', protocol: 'gb26875', gb26875: { address: '385b01000000' } })
    expect(again).toMatchObject({ status: 409, body: { field: 'gb26875.address' } })
  })

  it.each([
    [{ protocol: 'gb26875' }, 'gb26875'],
    [{ protocol: 'gb26875', gb26875: { address: '385b0100' } }, 'gb26875.address'],
    [{ protocol: 'gb26875', gb26875: { address: 'zz5b01000000' } }, 'gb26875.address'],
    [{ protocol: 'gb26875', gb26875: {} }, 'gb26875.address'],
    [{ protocol: 'mqtt', gb26875: { address: '385b01000001' } }, 'gb26875']
  ])('answers 400 for a UITD with %j naming %s', async (over, field) => {
    const r = await t.api('POST', '/api/v1/devices', { unitId: 'u-dev', kind: 'uitd', ...over })
    expect(r).toMatchObject({ status: 400, body: { field } })
  })

  it('answers 404 for an unknown device and its readings', async () => {
    expect((await t.api('GET', '/api/v1/devices/nope')).status).toBe(404)
    expect((await t.api('GET', '/api/v1/devices/nope/readings')).status).toBe(404)
  })

  it('answers 400 for an aggregate with more than 10,000 intervals', async () => {
    const r = await t.api('GET', '/api/v1/devices/panel-1/readings?every=1s&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z')
    expect(r).toMatchObject({ status: 400, body: { field: 'every' } })
    const ok = await t.api('GET', '/api/v1/devices/panel-1/readings?every=1h&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z')
    expect(ok.status).toBe(200)
  })

  it('answers 400 for a metric the device does not have', async () => {
    const r = await t.api('GET', '/api/v1/devices/panel-1/readings?metric=smoke_dbm')
    expect(r).toMatchObject({ status: 400, body: { field: 'metric' } })
  })
})

describe('access', () => {
  it('refuses requests without the bearer token', async () => {
    const base = `http://127.0.0.1:${t.httpPort}`
    expect((await fetch(`${base}/api/v1/units`)).status).toBe(401)
    const wrong = await fetch(`${base}/api/v1/units`, { headers: { authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toMatchObject({ code: 'FW_ERR_UNAUTHORIZED' })
  })

  it('guards the routes, not the spelling of the URL: a percent-encoded path gets no way round the token', async () => {
    const base = `http://127.0.0.1:${t.httpPort}`
    const before = (await t.api<{ total: number }>('GET', '/api/v1/jurisdictions')).body.total
    for (const path of ['/%61pi/v1/jurisdictions', '/ap%69/v1/jurisdictions', '/api/v1/%6Aurisdictions']) {
      expect((await fetch(base + path)).status).toBe(401)
      const post = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Intruder City', level: 'city' })
      })
      expect(post.status).toBe(401)
    }
    expect((await t.api<{ total: number }>('GET', '/api/v1/jurisdictions')).body.total).toBe(before)
  })

  it('serves health, readiness and the OpenAPI document without a token', async () => {
    const base = `http://127.0.0.1:${t.httpPort}`
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true })
    const ready = await (await fetch(`${base}/readyz`)).json()
    expect(ready).toMatchObject({ ready: true, checks: { redis: 'ok', postgres: 'ok', influxdb: 'ok' } })
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
      paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { required: string[] } }> } } }>
    }
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/devices', '/api/v1/devices/{id}/readings']))
    expect(doc.paths['/api/v1/units']!.post.requestBody.content['application/json']!.schema.required).toContain('contactName')
  })
})
