/**
 * The alert API against PostgreSQL: list filters and paging, history, the operator lifecycle with its actor (the
 * authenticated caller), what the
 * engine's raise and clear do (one open alert per key, fire alerts waiting for a person), validation, device test mode.
 * Alerts are raised through the app's AlertService directly, as the rule engine will.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, createUnitAt, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { RaiseInput } from '../src/alerts/alert-repository.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'

type AlertWithHistory = Alert & { transitions: AlertTransition[] }
type Reply = { code: string; message: string; field?: string }

let t: TestApp
let unitId: string
let seq = 0
/** Operators at the console, bound to the city of `unitId`: the actor recorded is who is logged in. */
const as: Record<string, ApiCall> = {}

beforeAll(async () => {
  t = await startTestApp()
  unitId = await createUnitAt(t.api)
  const { body: unit } = await t.api<{ jurisdictionId: string }>('GET', `/api/v1/units/${unitId}`)
  const base = `http://127.0.0.1:${t.httpPort}`
  for (const username of ['li.wei', 'zhang.min', 'chen.jie']) {
    const password = `${username}-password`
    const r = await t.api('POST', '/api/v1/users', { username, displayName: username, password, role: 'operator', jurisdictionId: unit.jurisdictionId })
    if (r.status !== 201) throw new Error(`user ${username}: ${r.status} ${JSON.stringify(r.body)}`)
    const { accessToken } = await loginAt(base, username, password)
    as[username] = apiWithToken(base, () => accessToken)
  }
})
afterAll(async () => {
  await t?.dispose()
})

/** A new key each call unless one is given. */
const raise = (over: Partial<RaiseInput> = {}) =>
  t.app.alerts.raise({
    unitId,
    deviceId: '',
    point: '',
    ruleId: `rule-${++seq}`,
    class: 'trouble',
    troubleType: 'fault',
    severity: 'minor',
    title: 'test alert',
    detail: {},
    at: new Date(),
    ...over
  })

const fire = (over: Partial<RaiseInput> = {}) =>
  raise({ class: 'fire', troubleType: null, severity: 'critical', title: 'smoke detector alarm', verification: 'single_source', ...over })

const keyOf = (a: Alert) => ({ unitId: a.unitId, deviceId: a.deviceId, point: a.point, ruleId: a.ruleId })
const get = (id: string) => t.api<AlertWithHistory>('GET', `/api/v1/alerts/${id}`)

describe('GET /alerts', () => {
  let unit: string
  let other: string
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    unit = await createUnitAt(t.api)
    other = await createUnitAt(t.api)
    ids.trouble = (await raise({ unitId: unit })).alert.id
    ids.fire = (await fire({ unitId: unit })).alert.id
    ids.supervisory = (await raise({ unitId: unit, class: 'supervisory', troubleType: null, severity: 'major' })).alert.id
    const cleared = (await raise({ unitId: unit })).alert
    ids.cleared = cleared.id
    await t.app.alerts.clear(keyOf(cleared), new Date())
    ids.elsewhere = (await raise({ unitId: other })).alert.id
  })

  const list = (q: string) => t.api<{ items: Alert[]; total: number }>('GET', `/api/v1/alerts?${q}`)

  it('lists a unit, unresolved first, fire before supervisory before trouble', async () => {
    const r = await list(`unitId=${unit}`)
    expect(r.status).toBe(200)
    expect(r.body.total).toBe(4)
    expect(r.body.items.map((a) => a.id)).toEqual([ids.fire, ids.supervisory, ids.trouble, ids.cleared])
    expect(r.body.items.every((a) => a.unitId === unit)).toBe(true)
  })

  it('filters by status, unresolved meaning open or acknowledged', async () => {
    await t.api('POST', `/api/v1/alerts/${ids.supervisory}/ack`, {})
    const unresolved = await list(`unitId=${unit}&status=unresolved`)
    expect(unresolved.body.total).toBe(3)
    expect(unresolved.body.items.map((a) => a.id).sort()).toEqual([ids.fire, ids.supervisory, ids.trouble].sort())
    const open = await list(`unitId=${unit}&status=open`)
    expect(open.body.items.map((a) => a.id).sort()).toEqual([ids.fire, ids.trouble].sort())
    const acknowledged = await list(`unitId=${unit}&status=acknowledged`)
    expect(acknowledged.body.items.map((a) => a.id)).toEqual([ids.supervisory])
    const resolved = await list(`unitId=${unit}&status=resolved`)
    expect(resolved.body).toMatchObject({ total: 1, items: [{ id: ids.cleared, status: 'resolved' }] })
  })

  it('filters by class and by unit', async () => {
    const troubles = await list(`unitId=${unit}&class=trouble`)
    expect(troubles.body.total).toBe(2)
    expect(troubles.body.items.map((a) => a.id).sort()).toEqual([ids.trouble, ids.cleared].sort())
    const fires = await list(`unitId=${unit}&class=fire`)
    expect(fires.body.items.map((a) => a.id)).toEqual([ids.fire])
    const elsewhere = await list(`unitId=${other}`)
    expect(elsewhere.body).toMatchObject({ total: 1, items: [{ id: ids.elsewhere }] })
  })

  it('pages with limit and offset, total counting every match', async () => {
    const first = await list(`unitId=${unit}&limit=3`)
    const second = await list(`unitId=${unit}&limit=3&offset=3`)
    expect(first.body.total).toBe(4)
    expect(second.body.total).toBe(4)
    expect(first.body.items).toHaveLength(3)
    expect(second.body.items).toHaveLength(1)
    expect([...first.body.items, ...second.body.items].map((a) => a.id)).toEqual([ids.fire, ids.supervisory, ids.trouble, ids.cleared])
    const past = await list(`unitId=${unit}&offset=10`)
    expect(past.body.items).toEqual([])
  })

  it('answers 400 naming the parameter for a bad filter', async () => {
    expect(await list('status=closed')).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'status' } })
    expect(await list('class=smoke')).toMatchObject({ status: 400, body: { field: 'class' } })
    expect(await list('limit=0')).toMatchObject({ status: 400, body: { field: 'limit' } })
  })
})

describe('GET /alerts/:id', () => {
  it('returns the alert with its transitions', async () => {
    const { alert } = await fire({ detail: { point: '1-023' } })
    const r = await get(alert.id)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ id: alert.id, class: 'fire', status: 'open', active: true, count: 1, verification: 'single_source' })
    expect(r.body.transitions).toEqual([
      expect.objectContaining({ action: 'opened', actor: 'system', fromStatus: null, toStatus: 'open', data: { point: '1-023' } })
    ])
  })

  it('answers 404 for an unknown, a non-numeric or an out-of-range id', async () => {
    for (const id of ['987654321', 'abc', '1e3', '99999999999999999999999']) {
      const r = await get(id)
      expect(r, id).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
    }
  })
})

describe('the operator lifecycle', () => {
  it('acknowledges then resolves, recording both with the logged-in operator as the actor', async () => {
    const { alert } = await fire()
    const ack = await as['li.wei']!<Alert>('POST', `/api/v1/alerts/${alert.id}/ack`, { comment: 'on my way' })
    expect(ack.status).toBe(200)
    expect(ack.body).toMatchObject({ id: alert.id, status: 'acknowledged', acknowledgedBy: 'li.wei' })
    expect(ack.body.acknowledgedAt).not.toBeNull()

    // Acknowledging again changes nothing and records nothing.
    const again = await as['zhang.min']!<Alert>('POST', `/api/v1/alerts/${alert.id}/ack`, {})
    expect(again).toMatchObject({ status: 200, body: { status: 'acknowledged', acknowledgedBy: 'li.wei' } })

    const resolved = await as['li.wei']!<Alert>('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'false_alarm', comment: 'cooking smoke' })
    expect(resolved.status).toBe(200)
    expect(resolved.body).toMatchObject({
      status: 'resolved',
      resolvedBy: 'li.wei',
      disposition: 'false_alarm',
      resolutionComment: 'cooking smoke',
      acknowledgedBy: 'li.wei'
    })

    const history = (await get(alert.id)).body.transitions
    expect(history.map((x) => [x.action, x.actor, x.comment, x.fromStatus, x.toStatus])).toEqual([
      ['opened', 'system', null, null, 'open'],
      ['acknowledged', 'li.wei', 'on my way', 'open', 'acknowledged'],
      ['resolved', 'li.wei', 'cooking smoke', 'acknowledged', 'resolved']
    ])
    expect(history[2]!.data).toEqual({ disposition: 'false_alarm' })
  })

  it('resolves an open alert, recording acknowledged and resolved, as the administrator who called', async () => {
    const { alert } = await raise()
    const r = await t.api<Alert>('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'device_fault' })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ status: 'resolved', resolvedBy: 'root', acknowledgedBy: 'root', disposition: 'device_fault', resolutionComment: null })
    const history = (await get(alert.id)).body.transitions
    expect(history.map((x) => [x.action, x.actor, x.fromStatus, x.toStatus])).toEqual([
      ['opened', 'system', null, 'open'],
      ['acknowledged', 'root', 'open', 'acknowledged'],
      ['resolved', 'root', 'acknowledged', 'resolved']
    ])
  })

  it('answers 409 to resolving or acknowledging a resolved alert, and records nothing', async () => {
    const { alert } = await raise()
    expect((await t.api('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'other' })).status).toBe(200)
    const before = (await get(alert.id)).body.transitions.length
    const twice = await t.api<Reply>('POST', `/api/v1/alerts/${alert.id}/resolve`, { disposition: 'false_alarm' })
    expect(twice).toMatchObject({ status: 409, body: { code: 'FW_ERR_CONFLICT' } })
    expect((await t.api('POST', `/api/v1/alerts/${alert.id}/ack`, {})).status).toBe(409)
    const after = await get(alert.id)
    expect(after.body).toMatchObject({ disposition: 'other' })
    expect(after.body.transitions).toHaveLength(before)
  })

  it('confirms a fire alert, acknowledging it, and refuses to confirm any other class with 409', async () => {
    const { alert } = await fire()
    const r = await as['chen.jie']!<Alert>('POST', `/api/v1/alerts/${alert.id}/confirm`, { comment: 'seen on CCTV' })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ status: 'acknowledged', verification: 'operator', confirmedBy: 'chen.jie', acknowledgedBy: 'chen.jie' })
    expect((await get(alert.id)).body.transitions.at(-1)).toMatchObject({ action: 'confirmed', actor: 'chen.jie', comment: 'seen on CCTV' })

    const { alert: trouble } = await raise()
    const refused = await t.api<Reply>('POST', `/api/v1/alerts/${trouble.id}/confirm`, {})
    expect(refused).toMatchObject({ status: 409, body: { code: 'FW_ERR_CONFLICT' } })
    expect((await get(trouble.id)).body).toMatchObject({ status: 'open', confirmedAt: null })
  })

  it('takes ack and confirm without a body', async () => {
    const { alert } = await fire()
    const ack = await t.api<Alert>('POST', `/api/v1/alerts/${alert.id}/ack`)
    expect(ack).toMatchObject({ status: 200, body: { status: 'acknowledged', acknowledgedBy: 'root' } })
    const confirm = await t.api<Alert>('POST', `/api/v1/alerts/${alert.id}/confirm`)
    expect(confirm).toMatchObject({ status: 200, body: { confirmedBy: 'root' } })
  })

  it('sets the owner and expiry of an isolation, refusing a past expiry and other classes', async () => {
    const { alert } = await raise({ class: 'isolation', troubleType: null, severity: 'warning', title: 'loop 2 isolated' })
    const expiresAt = new Date(Date.now() + 4 * 3600_000).toISOString()
    const r = await as['li.wei']!<Alert>('POST', `/api/v1/alerts/${alert.id}/isolation`, { owner: 'maintenance contractor', expiresAt })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ isolationOwner: 'maintenance contractor', isolationExpiresAt: expiresAt })
    expect((await get(alert.id)).body.transitions.at(-1)).toMatchObject({ action: 'isolation_set', actor: 'li.wei' })

    const past = await t.api<Reply>('POST', `/api/v1/alerts/${alert.id}/isolation`, {
      owner: 'x',
      expiresAt: new Date(Date.now() - 60_000).toISOString()
    })
    expect(past).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'expiresAt' } })
    expect((await get(alert.id)).body.isolationExpiresAt).toBe(expiresAt)

    const { alert: trouble } = await raise()
    expect((await t.api('POST', `/api/v1/alerts/${trouble.id}/isolation`, { owner: 'x', expiresAt })).status).toBe(409)
  })
})

describe('what raise and clear do', () => {
  it('keeps a cleared fire alert open, inactive, recording the restore', async () => {
    const { alert } = await fire()
    const cleared = await t.app.alerts.clear(keyOf(alert), new Date())
    expect(cleared?.change).toBe('restored')
    const r = await get(alert.id)
    expect(r.body).toMatchObject({ status: 'open', active: false, disposition: null, resolvedAt: null })
    expect(r.body.clearedAt).not.toBeNull()
    expect(r.body.transitions.map((x) => x.action)).toEqual(['opened', 'restored'])
    expect(r.body.transitions[1]).toMatchObject({ actor: 'system', fromStatus: 'open', toStatus: 'open' })
  })

  it('resolves a cleared trouble alert with disposition restored', async () => {
    const { alert } = await raise()
    await t.app.alerts.clear(keyOf(alert), new Date())
    const r = await get(alert.id)
    expect(r.body).toMatchObject({ status: 'resolved', active: false, disposition: 'restored', resolvedBy: 'system' })
    expect(r.body.transitions.map((x) => [x.action, x.toStatus])).toEqual([
      ['opened', 'open'],
      ['cleared', 'resolved']
    ])
  })

  it('keeps one open alert per key: a second raise while active changes nothing', async () => {
    const first = await fire()
    const second = await fire({ ruleId: first.alert.ruleId })
    expect(second.change).toBeNull()
    expect(second.alert.id).toBe(first.alert.id)
    const r = await get(first.alert.id)
    expect(r.body.count).toBe(1)
    expect(r.body.transitions).toHaveLength(1)
    const all = await t.api<{ total: number }>('GET', `/api/v1/alerts?unitId=${unitId}&ruleId=${first.alert.ruleId}`)
    expect(all.body.total).toBe(1)
  })

  it('counts a fire that recurs after it cleared on the same alert', async () => {
    const first = await fire()
    await t.app.alerts.clear(keyOf(first.alert), new Date())
    const again = await fire({ ruleId: first.alert.ruleId })
    expect(again.change).toBe('recurred')
    expect(again.alert.id).toBe(first.alert.id)
    const r = await get(first.alert.id)
    expect(r.body).toMatchObject({ count: 2, active: true, clearedAt: null, status: 'open' })
    expect(r.body.transitions.map((x) => x.action)).toEqual(['opened', 'restored', 'recurred'])
  })

  it('opens a new alert for a trouble that recurs after it resolved itself', async () => {
    const first = await raise()
    await t.app.alerts.clear(keyOf(first.alert), new Date())
    const again = await raise({ ruleId: first.alert.ruleId })
    expect(again.change).toBe('opened')
    expect(again.alert.id).not.toBe(first.alert.id)
    expect(again.alert.count).toBe(1)
  })
})

describe('validation and unknown ids', () => {
  let id: string
  beforeAll(async () => {
    id = (await fire()).alert.id
  })

  const bad: [string, string, Record<string, unknown>, string][] = [
    ['resolve without a disposition', 'resolve', { comment: 'x' }, 'disposition'],
    ['resolve with an unknown disposition', 'resolve', { disposition: 'arson' }, 'disposition'],
    ["resolve with the system's own disposition", 'resolve', { disposition: 'restored' }, 'disposition'],
    ['resolve with an extra property', 'resolve', { disposition: 'other', by: 'me' }, 'by'],
    ['ack with an extra property', 'ack', { note: 'x' }, 'note'],
    ['a comment too long', 'ack', { comment: 'x'.repeat(2001) }, 'comment'],
    ['isolation without an owner', 'isolation', { expiresAt: new Date(Date.now() + 3600_000).toISOString() }, 'owner'],
    ['isolation with a bad expiry', 'isolation', { owner: 'x', expiresAt: 'tomorrow' }, 'expiresAt']
  ]
  for (const [what, action, body, field] of bad) {
    it(`answers 400 naming ${field} for ${what}, and changes nothing`, async () => {
      const r = await t.api<Reply>('POST', `/api/v1/alerts/${id}/${action}`, body)
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({ code: 'FW_ERR_VALIDATION', field })
      expect(r.body.message).toContain(field)
      expect((await get(id)).body).toMatchObject({ status: 'open', transitions: [{ action: 'opened' }] })
    })
  }

  it('records the caller whatever an X-Firewatch-Actor header says (it is no longer read)', async () => {
    const { alert } = await raise()
    const r = await as['li.wei']!<Alert>('POST', `/api/v1/alerts/${alert.id}/ack`, {}, { 'x-firewatch-actor': 'system' })
    expect(r).toMatchObject({ status: 200, body: { acknowledgedBy: 'li.wei' } })
    expect((await get(alert.id)).body.transitions.at(-1)).toMatchObject({ action: 'acknowledged', actor: 'li.wei' })
  })

  it('records an API key as api-key:{name}', async () => {
    const { body: unit } = await t.api<{ jurisdictionId: string }>('GET', `/api/v1/units/${unitId}`)
    const created = await t.api<{ key: string }>('POST', '/api/v1/api-keys', { name: 'console-bridge', role: 'operator', jurisdictionId: unit.jurisdictionId })
    expect(created.status).toBe(201)
    const { alert } = await raise()
    const r = await apiWithToken(`http://127.0.0.1:${t.httpPort}`, () => created.body.key)<Alert>('POST', `/api/v1/alerts/${alert.id}/ack`, {})
    expect(r).toMatchObject({ status: 200, body: { acknowledgedBy: 'api-key:console-bridge' } })
  })

  it('answers 404 for an alert that does not exist, for every action', async () => {
    const expiresAt = new Date(Date.now() + 3600_000).toISOString()
    const calls: [string, Record<string, unknown>][] = [
      ['ack', {}],
      ['confirm', {}],
      ['resolve', { disposition: 'other' }],
      ['isolation', { owner: 'x', expiresAt }]
    ]
    for (const [action, body] of calls) {
      for (const missing of ['987654321', 'abc']) {
        const r = await t.api<Reply>('POST', `/api/v1/alerts/${missing}/${action}`, body)
        expect(r, `${action} ${missing}`).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
      }
    }
  })

  it('requires the bearer token', async () => {
    const r = await fetch(`http://127.0.0.1:${t.httpPort}/api/v1/alerts`)
    expect(r.status).toBe(401)
  })
})

describe('device test mode', () => {
  type TestMode = { deviceId: string; testModeUntil: string | null }

  it('sets and clears test mode, shown by the device reads and testModes()', async () => {
    const device = await t.provision('sprinkler_pressure', unitId)
    expect((await t.api('GET', `/api/v1/devices/${device.id}`)).body).toMatchObject({ testModeUntil: null })

    const before = Date.now()
    const set = await t.api<TestMode>('PUT', `/api/v1/devices/${device.id}/test-mode`, { minutes: 30 })
    expect(set.status).toBe(200)
    expect(set.body.deviceId).toBe(device.id)
    const until = Date.parse(set.body.testModeUntil!)
    expect(until).toBeGreaterThanOrEqual(before + 30 * 60_000)
    expect(until).toBeLessThanOrEqual(Date.now() + 30 * 60_000)

    const read = await t.api<{ testModeUntil: string | null }>('GET', `/api/v1/devices/${device.id}`)
    expect(read.body.testModeUntil).toBe(set.body.testModeUntil)
    const listed = await t.api<{ items: { id: string; testModeUntil: string | null }[] }>('GET', `/api/v1/devices?unitId=${unitId}`)
    expect(listed.body.items.find((d) => d.id === device.id)?.testModeUntil).toBe(set.body.testModeUntil)
    expect((await t.app.registry.testModes()).get(device.id)).toBe(until)

    const cleared = await t.api<TestMode>('DELETE', `/api/v1/devices/${device.id}/test-mode`)
    expect(cleared).toMatchObject({ status: 200, body: { deviceId: device.id, testModeUntil: null } })
    expect((await t.api('GET', `/api/v1/devices/${device.id}`)).body).toMatchObject({ testModeUntil: null })
    expect((await t.app.registry.testModes()).has(device.id)).toBe(false)
    // Clearing again is not an error.
    expect((await t.api('DELETE', `/api/v1/devices/${device.id}/test-mode`)).status).toBe(200)
  })

  it('shows an expired test mode as none', async () => {
    const device = await t.provision('sprinkler_pressure', unitId)
    expect(await t.app.registry.setTestMode(device.id, new Date(Date.now() - 1000))).toBe(true)
    expect((await t.api('GET', `/api/v1/devices/${device.id}`)).body).toMatchObject({ testModeUntil: null })
    expect((await t.app.registry.testModes()).has(device.id)).toBe(false)
  })

  it('answers 400 naming minutes for a bad duration', async () => {
    const device = await t.provision('sprinkler_pressure', unitId)
    for (const body of [{ minutes: 0 }, { minutes: 7 * 24 * 60 + 1 }, { minutes: 1.5 }, {}]) {
      const r = await t.api<Reply>('PUT', `/api/v1/devices/${device.id}/test-mode`, body)
      expect(r, JSON.stringify(body)).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'minutes' } })
    }
  })

  it('answers 404 for a device that does not exist', async () => {
    const put = await t.api<Reply>('PUT', '/api/v1/devices/no-such-device/test-mode', { minutes: 10 })
    expect(put).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
    const del = await t.api<Reply>('DELETE', '/api/v1/devices/no-such-device/test-mode')
    expect(del).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
    expect(await t.app.registry.setTestMode('no-such-device', null)).toBe(false)
  })
})
