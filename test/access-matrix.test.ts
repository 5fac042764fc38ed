/**
 * Who may see and do what (issue 5): every /api/v1 route driven as every kind of principal against a record in the
 * caller's district (A) and one in the neighbouring district (B) of the same city, with the exact status expected
 * written out below. The tables are the policy as a person reads it; they are not derived from `can()`, so this file
 * fails when the code's policy drifts from them.
 *
 * Rules the tables follow: outside the caller's subtree reads as missing (404, or 400 "does not exist" for a record
 * named in a body) for every role, checked before the role, so a 403 never confirms a record exists; inside it, a
 * role that may not do the action gets 403; a list is the caller's subtree only.
 *
 * The live channel (WebSocket /api/v1/live) has a table of its own: which changes each principal's socket carries,
 * live and when resuming from a last event id.
 *
 * Then the credentials themselves: no, garbage, expired, revoked and disabled tokens; the login rate limit; refresh
 * token rotation and reuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import mqtt from 'mqtt'
import { ADMIN_TOKEN, ROOT_USER, apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import { LiveClient, type LiveMessage } from './helpers/live-client.js'
import { deriveJwtSecret } from '../src/auth/auth-service.js'
import type { AlertClass } from '../schemas/alerts.js'

type Side = 'A' | 'B'
const SIDES: Side[] = ['A', 'B']

/** The principals, all bound to district A except root (the whole system). */
const WHO = ['root', 'admin-a', 'operator-a', 'inspector-a', 'viewer-a', 'key-a'] as const
type Who = (typeof WHO)[number]
/** The actor name each principal is recorded as. */
const ACTOR: Record<Who, string> = {
  root: 'root',
  'admin-a': 'admin-a',
  'operator-a': 'operator-a',
  'inspector-a': 'inspector-a',
  'viewer-a': 'viewer-a',
  'key-a': 'api-key:key-a'
}

/** A status, or for lists: 200 with the target in it (L) / 200 without it (H). */
type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
/** [target in A, target in B] */
type Pair = [Expect, Expect]
type Row = [root: Pair, admin: Pair, operator: Pair, inspector: Pair, viewer: Pair, key: Pair]

// prettier-ignore
const READS: [string, Row][] = [
  //                                   root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)
  ['GET /jurisdictions',              [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /jurisdictions?within=',      [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /jurisdictions/{id}',         [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /units',                      [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /units?jurisdictionId=',      [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /units/{id}',                 [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /devices',                    [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /devices?unitId=',            [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /devices/{id}',               [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /devices/{id}/readings',      [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /devices/{id}/events',        [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /alerts',                     [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /alerts?unitId=',             [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /alerts?deviceId=',           [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /alerts/{id}',                [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /units/{id}/risk',            [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /units/{id}/risk/history',    [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /users',                      [[L, L],     [L, H],      [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['GET /users/{id}',                 [[200, 200], [200, 404],  [403, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['GET /api-keys',                   [[L, L],     [L, H],      [403, 403],  [403, 403],  [403, 403],  [403, 403]]]
]

// prettier-ignore
const WRITES: [string, Row][] = [
  //                                   root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)
  ['POST /jurisdictions (street)',    [[201, 201], [201, 400],  [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['POST /units',                     [[201, 201], [201, 400],  [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['POST /devices',                   [[201, 201], [201, 400],  [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['POST /alerts/{id}/ack',           [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['POST /alerts/{id}/confirm',       [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['POST /alerts/{id}/resolve',       [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['POST /alerts/{id}/isolation',     [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['PUT /devices/{id}/test-mode',     [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['DELETE /devices/{id}/test-mode',  [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [200, 404]]],
  ['POST /users',                     [[201, 201], [201, 400],  [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['PATCH /users/{id}',               [[200, 200], [200, 404],  [403, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['POST /api-keys',                  [[201, 201], [201, 400],  [403, 403],  [403, 403],  [403, 403],  [403, 403]]],
  ['DELETE /api-keys/{id}',           [[204, 204], [204, 404],  [403, 404],  [403, 404],  [403, 404],  [403, 404]]]
]

// The live channel: whether a change on A's side and on B's reaches the principal's socket (R) or never does (N) — not
// as a message, not as an id. Live, and in the backlog of a socket resuming from a last event id from before it.
const R = 'received'
const N = 'never'
type Got = typeof R | typeof N
type LiveRow = [root: [Got, Got], admin: [Got, Got], operator: [Got, Got], inspector: [Got, Got], viewer: [Got, Got], key: [Got, Got]]

// prettier-ignore
const LIVE: [string, LiveRow][] = [
  //                                   root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)
  ['WS /live alert change',           [[R, R],     [R, N],      [R, N],      [R, N],      [R, N],      [R, N]]],
  ['WS /live device online',          [[R, R],     [R, N],      [R, N],      [R, N],      [R, N],      [R, N]]],
  ['WS /live resumed: alert change',  [[R, R],     [R, N],      [R, N],      [R, N],      [R, N],      [R, N]]]
]

// Not about a record of A or B.
// prettier-ignore
const UNTARGETED: [string, [root: Expect, admin: Expect, operator: Expect, inspector: Expect, viewer: Expect, key: Expect]][] = [
  //                                   root  admin-a  operator-a  inspector-a  viewer-a  key-a
  ['POST /jurisdictions (city)',      [201,  403,     403,        403,         403,      403]]
]

// --- the world ---------------------------------------------------------------------------------------------------

let t: TestApp
let base: string
const as = {} as Record<Who, ApiCall>
/** The bearer each principal calls with (for the live channel, which takes it in the query). */
const tokens = {} as Record<Who, string>
let seq = 0
const next = () => `m${++seq}`

interface Fixture {
  district: string
  unit: string
  device: string
  /** The device's MQTT secret, to bring it online. */
  secret: string
  alert: string
  /** A viewer bound to the district: the target of the user rows. */
  user: string
  apiKey: string
}
const fx = {} as Record<Side, Fixture>
const CITY = 'city-c'
const DISTRICT: Record<Side, string> = { A: 'district-a', B: 'district-b' }
const STREET_A = 'street-a1'

const raise = async (unitId: string, cls: AlertClass = 'trouble') =>
  (
    await t.app.alerts.raise({
      unitId,
      deviceId: '',
      point: '',
      ruleId: `matrix-${next()}`,
      class: cls,
      troubleType: cls === 'trouble' ? 'fault' : null,
      severity: cls === 'fire' ? 'critical' : 'minor',
      title: `${cls} alert for the matrix`,
      detail: {},
      at: new Date(),
      ...(cls === 'fire' ? { verification: 'single_source' as const } : {})
    })
  ).alert

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

const password = (username: string) => `${username}-password-123`

async function user(username: string, role: string, jurisdictionId: string | null): Promise<string> {
  const u = await root<{ id: string }>('POST', '/api/v1/users', { username, displayName: username, password: password(username), role, jurisdictionId })
  return u.id
}

beforeAll(async () => {
  t = await startTestApp()
  base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api

  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: 'City C', level: 'city' })
  for (const side of SIDES) await root('POST', '/api/v1/jurisdictions', { id: DISTRICT[side], parentId: CITY, name: `District ${side}`, level: 'district' })
  await root('POST', '/api/v1/jurisdictions', { id: STREET_A, parentId: DISTRICT.A, name: 'Street A1', level: 'street' })

  for (const side of SIDES) {
    // A's unit sits in A's street: the subtree reaches below the district.
    const jurisdictionId = side === 'A' ? STREET_A : DISTRICT.B
    const unit = `unit-${side.toLowerCase()}`
    await root('POST', '/api/v1/units', {
      id: unit,
      jurisdictionId,
      name: `Unit ${side}`,
      address: `${side} Road 1`,
      category: 'key',
      contactName: 'Duty Manager',
      contactPhone: '0571-0000000'
    })
    const device = `device-${side.toLowerCase()}`
    const { secret } = await root<{ secret: string }>('POST', '/api/v1/devices', { id: device, unitId: unit, kind: 'alarm_panel' })
    const alert = await t.app.alerts.raise({
      unitId: unit,
      deviceId: device,
      point: '1-001',
      ruleId: 'matrix-fixture',
      class: 'trouble',
      troubleType: 'fault',
      severity: 'minor',
      title: `fixture alert ${side}`,
      detail: {},
      at: new Date()
    })
    const target = await user(`target-${side.toLowerCase()}`, 'viewer', DISTRICT[side])
    const key = await root<{ apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: `key-${side.toLowerCase()}-listed`, role: 'viewer', jurisdictionId: DISTRICT[side] })
    fx[side] = { district: DISTRICT[side], unit, device, secret, alert: alert.alert.id, user: target, apiKey: key.apiKey.id }
  }

  for (const role of ['admin', 'operator', 'inspector', 'viewer'] as const) {
    const username = `${role}-a` as Who
    await user(username, role, DISTRICT.A)
    const { accessToken } = await loginAt(base, username, password(username))
    as[username] = apiWithToken(base, () => accessToken)
    tokens[username] = accessToken
  }
  const key = await root<{ key: string }>('POST', '/api/v1/api-keys', { name: 'key-a', role: 'operator', jurisdictionId: DISTRICT.A })
  as['key-a'] = apiWithToken(base, () => key.key)
  tokens['key-a'] = key.key
  tokens.root = (await loginAt(base, ROOT_USER.username, ROOT_USER.password)).accessToken
})
afterAll(async () => {
  await t?.dispose()
})

// --- the endpoints -----------------------------------------------------------------------------------------------

interface Outcome {
  status: number
  body: unknown
  /** For a list: the id the target is listed under. */
  find?: string
  /** Run after the status was checked: what the call did (or did not do) to the record. */
  after?: (who: Who, ok: boolean) => Promise<void>
}
type Call = (api: ApiCall, side: Side) => Promise<Outcome>

/** Lists are read whole (limit 1000): whether the target is in them must not depend on paging. */
const withLimit = (path: string) => (path === '/api-keys' ? path : `${path}${path.includes('?') ? '&' : '?'}limit=1000`)
const list = async (api: ApiCall, path: string, find: string): Promise<Outcome> => ({ ...(await api('GET', `/api/v1${withLimit(path)}`)), find })
const read = (api: ApiCall, path: string): Promise<Outcome> => api('GET', `/api/v1${path}`)

/** An alert action on a fresh alert of the side's unit: afterwards it carries the caller as actor, or is untouched. */
const alertAction =
  (action: string, cls: AlertClass, body: Record<string, unknown>): Call =>
  async (api, side) => {
    const alert = await raise(fx[side].unit, cls)
    const r = await api('POST', `/api/v1/alerts/${alert.id}/${action}`, body)
    return {
      ...r,
      after: async (who, ok) => {
        const transitions = await t.app.alerts.transitions(alert.id)
        if (ok) expect(transitions.at(-1)!.actor).toBe(ACTOR[who])
        else expect(transitions.map((x) => x.action)).toEqual(['opened'])
      }
    }
  }

/** Whether a record can be read back by the system administrator. */
const exists = async (path: string) => (await t.api('GET', `/api/v1${path}`)).status === 200
const createdOrNot = (path: string) => async (_who: Who, ok: boolean) => expect(await exists(path)).toBe(ok)

const ENDPOINTS: Record<string, Call> = {
  'GET /jurisdictions': (api, s) => list(api, '/jurisdictions', fx[s].district),
  'GET /jurisdictions?within=': (api, s) => list(api, `/jurisdictions?within=${fx[s].district}`, fx[s].district),
  'GET /jurisdictions/{id}': (api, s) => read(api, `/jurisdictions/${fx[s].district}`),
  'GET /units': (api, s) => list(api, '/units', fx[s].unit),
  'GET /units?jurisdictionId=': (api, s) => list(api, `/units?jurisdictionId=${fx[s].district}`, fx[s].unit),
  'GET /units/{id}': (api, s) => read(api, `/units/${fx[s].unit}`),
  'GET /devices': (api, s) => list(api, '/devices', fx[s].device),
  'GET /devices?unitId=': (api, s) => list(api, `/devices?unitId=${fx[s].unit}`, fx[s].device),
  'GET /devices/{id}': (api, s) => read(api, `/devices/${fx[s].device}`),
  'GET /devices/{id}/readings': (api, s) => read(api, `/devices/${fx[s].device}/readings`),
  'GET /devices/{id}/events': (api, s) => read(api, `/devices/${fx[s].device}/events`),
  'GET /alerts': (api, s) => list(api, '/alerts', fx[s].alert),
  'GET /alerts?unitId=': (api, s) => list(api, `/alerts?unitId=${fx[s].unit}`, fx[s].alert),
  'GET /alerts?deviceId=': (api, s) => list(api, `/alerts?deviceId=${fx[s].device}`, fx[s].alert),
  'GET /alerts/{id}': (api, s) => read(api, `/alerts/${fx[s].alert}`),
  'GET /units/{id}/risk': (api, s) => read(api, `/units/${fx[s].unit}/risk`),
  'GET /units/{id}/risk/history': (api, s) => read(api, `/units/${fx[s].unit}/risk/history`),
  'GET /users': (api, s) => list(api, '/users', fx[s].user),
  'GET /users/{id}': (api, s) => read(api, `/users/${fx[s].user}`),
  'GET /api-keys': (api, s) => list(api, '/api-keys', fx[s].apiKey),

  'POST /jurisdictions (street)': async (api, s) => {
    const id = `street-${next()}`
    return { ...(await api('POST', '/api/v1/jurisdictions', { id, parentId: fx[s].district, name: id, level: 'street' })), after: createdOrNot(`/jurisdictions/${id}`) }
  },
  'POST /jurisdictions (city)': async (api) => {
    const id = `city-${next()}`
    return { ...(await api('POST', '/api/v1/jurisdictions', { id, name: id, level: 'city' })), after: createdOrNot(`/jurisdictions/${id}`) }
  },
  'POST /units': async (api, s) => {
    const id = `unit-${next()}`
    const body = { id, jurisdictionId: fx[s].district, name: id, address: '2 Road', category: 'general', contactName: 'x', contactPhone: '0571-0000001' }
    return { ...(await api('POST', '/api/v1/units', body)), after: createdOrNot(`/units/${id}`) }
  },
  'POST /devices': async (api, s) => {
    const id = `dev-${next()}`
    return { ...(await api('POST', '/api/v1/devices', { id, unitId: fx[s].unit, kind: 'smoke_detector' })), after: createdOrNot(`/devices/${id}`) }
  },
  'POST /alerts/{id}/ack': alertAction('ack', 'trouble', {}),
  'POST /alerts/{id}/confirm': alertAction('confirm', 'fire', {}),
  'POST /alerts/{id}/resolve': alertAction('resolve', 'trouble', { disposition: 'other' }),
  'POST /alerts/{id}/isolation': alertAction('isolation', 'isolation', { owner: 'contractor', expiresAt: new Date(Date.now() + 3600_000).toISOString() }),
  'PUT /devices/{id}/test-mode': async (api, s) => {
    await t.app.registry.setTestMode(fx[s].device, null)
    return {
      ...(await api('PUT', `/api/v1/devices/${fx[s].device}/test-mode`, { minutes: 5 })),
      after: async (_who, ok) => expect((await t.app.registry.testModes()).has(fx[s].device)).toBe(ok)
    }
  },
  'DELETE /devices/{id}/test-mode': async (api, s) => {
    await t.app.registry.setTestMode(fx[s].device, new Date(Date.now() + 600_000))
    return {
      ...(await api('DELETE', `/api/v1/devices/${fx[s].device}/test-mode`)),
      after: async (_who, ok) => expect((await t.app.registry.testModes()).has(fx[s].device)).toBe(!ok)
    }
  },
  'POST /users': async (api, s) => {
    const username = `new-user-${next()}`
    const r = await api<{ id?: string }>('POST', '/api/v1/users', { username, displayName: username, password: password(username), role: 'viewer', jurisdictionId: fx[s].district })
    return {
      ...r,
      after: async (_who, ok) => {
        const { body } = await t.api<{ items: { username: string }[] }>('GET', '/api/v1/users?limit=1000')
        expect(body.items.some((u) => u.username === username)).toBe(ok)
      }
    }
  },
  'PATCH /users/{id}': async (api, s) => {
    const displayName = `renamed ${next()}`
    return {
      ...(await api('PATCH', `/api/v1/users/${fx[s].user}`, { displayName })),
      after: async (_who, ok) => expect((await t.app.auth.getUser(fx[s].user))!.displayName === displayName).toBe(ok)
    }
  },
  'POST /api-keys': async (api, s) => {
    const name = `new-key-${next()}`
    return {
      ...(await api('POST', '/api/v1/api-keys', { name, role: 'viewer', jurisdictionId: fx[s].district })),
      after: async (_who, ok) => expect((await t.app.auth.listApiKeys(null)).some((k) => k.name === name)).toBe(ok)
    }
  },
  'DELETE /api-keys/{id}': async (api, s) => {
    const created = await root<{ key: string; apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: `doomed-${next()}`, role: 'viewer', jurisdictionId: fx[s].district })
    return {
      ...(await api('DELETE', `/api/v1/api-keys/${created.apiKey.id}`)),
      // Revoked: the key no longer opens anything; refused: it still does.
      after: async (_who, ok) => expect((await apiWithToken(base, () => created.key)('GET', '/api/v1/auth/me')).status).toBe(ok ? 401 : 200)
    }
  }
}

function check(expected: Expect, r: Outcome): void {
  const context = JSON.stringify(r.body).slice(0, 300)
  if (typeof expected === 'number') {
    expect(r.status, context).toBe(expected)
    if (expected === 404) expect(r.body).toMatchObject({ code: 'FW_ERR_NOT_FOUND' })
    if (expected === 403) expect(r.body).toMatchObject({ code: 'FW_ERR_FORBIDDEN' })
    if (expected === 400) expect(r.body).toMatchObject({ code: 'FW_ERR_VALIDATION' })
    return
  }
  expect(r.status, context).toBe(200)
  const ids = (r.body as { items: { id: string }[] }).items.map((x) => x.id)
  if (expected === L) expect(ids).toContain(r.find)
  else expect(ids).not.toContain(r.find)
}

type Cell = [label: string, who: Who, endpoint: string, side: Side, expected: Expect]
const cells = (table: [string, Row][]): Cell[] =>
  table.flatMap(([endpoint, row]) =>
    WHO.flatMap((who, i) => SIDES.map((side, j): Cell => [`${who} ${endpoint} on ${side}'s → ${row[i]![j]}`, who, endpoint, side, row[i]![j]!]))
  )

describe('the access matrix', () => {
  it('has a call for every row and a row for every call', () => {
    const rows = [...READS, ...WRITES, ...UNTARGETED].map(([e]) => e).sort()
    expect(rows).toEqual(Object.keys(ENDPOINTS).sort())
  })

  it.each(cells(READS))('%s', async (_label, who, endpoint, side, expected) => {
    check(expected, await ENDPOINTS[endpoint]!(as[who], side))
  })

  it.each(cells(WRITES))('%s', async (_label, who, endpoint, side, expected) => {
    const r = await ENDPOINTS[endpoint]!(as[who], side)
    check(expected, r)
    await r.after?.(who, typeof expected === 'number' && expected < 300)
  })

  it.each(UNTARGETED.flatMap(([endpoint, row]) => WHO.map((who, i): [string, Who, string, Expect] => [`${who} ${endpoint} → ${row[i]}`, who, endpoint, row[i]!])))(
    '%s',
    async (_label, who, endpoint, expected) => {
      const r = await ENDPOINTS[endpoint]!(as[who], 'A')
      check(expected, r)
      await r.after?.(who, typeof expected === 'number' && expected < 300)
    }
  )
})

describe('what a caller bound to A can learn about B', () => {
  const B_IDS = () => [DISTRICT.B, CITY, fx.B.unit, fx.B.device, fx.B.alert, fx.B.user, fx.B.apiKey]
  const LISTS = ['/jurisdictions', '/units', '/devices', '/alerts', '/users', '/api-keys']

  it.each(WHO.filter((w) => w !== 'root'))('%s: no list holds a record of B, or mentions one (nor lists the city above A)', async (who) => {
    for (const path of LISTS) {
      const r = await as[who]<{ items: { id: string }[] }>('GET', `/api/v1${withLimit(path)}`)
      if (r.status === 403) continue
      expect(r.status, path).toBe(200)
      expect(r.body.items.length, path).toBeGreaterThan(0)
      for (const item of r.body.items) {
        expect(item.id, path).not.toBe(CITY)
        // The city is in A's own path; nothing of B is anywhere: not an id, a unitId, a parentId, a path.
        for (const id of B_IDS().filter((x) => x !== CITY)) expect(JSON.stringify(item), `${path}: ${id}`).not.toContain(`"${id}"`)
      }
    }
  })

  /** The reply with the id in its message made generic: what is left must not tell B's record from a missing one. */
  const normalize = (body: unknown, id: string) => {
    const b = body as { code: string; message: string }
    return { ...b, message: b.message.replace(new RegExp(`(?<![\\w-])${id.replace(/[.-]/g, '\\$&')}(?![\\w-])`, 'g'), '{id}') }
  }

  it.each([
    ['GET', (id: string) => `/units/${id}`, () => fx.B.unit],
    ['GET', (id: string) => `/devices/${id}/readings`, () => fx.B.device],
    ['GET', (id: string) => `/alerts/${id}`, () => fx.B.alert],
    ['POST', (id: string) => `/alerts/${id}/ack`, () => fx.B.alert],
    ['PUT', (id: string) => `/devices/${id}/test-mode`, () => fx.B.device],
    ['GET', (id: string) => `/users/${id}`, () => fx.B.user]
  ] as const)('%s %s: B’s record answers exactly as a missing one, for every role', async (method, path, id) => {
    const missing = path('x').startsWith('/alerts') ? '9876543210' : 'no-such-record'
    const body = method === 'PUT' ? { minutes: 5 } : method === 'POST' ? {} : undefined
    for (const who of WHO.filter((w) => w !== 'root')) {
      const theirs = await as[who](method, `/api/v1${path(id())}`, body)
      const none = await as[who](method, `/api/v1${path(missing)}`, body)
      expect(theirs.status, who).toBe(404)
      expect(normalize(theirs.body, id()), who).toEqual(normalize(none.body, missing))
    }
  })

  it('naming B in a body reads as naming nothing: the same 400 as a missing jurisdiction or unit', async () => {
    const admin = as['admin-a']
    const unit = (jurisdictionId: string) => ({ jurisdictionId, name: 'x', address: 'x', category: 'general', contactName: 'x', contactPhone: '0571-0000001' })
    expect((await admin('POST', '/api/v1/units', unit(DISTRICT.B))).body).toEqual((await admin('POST', '/api/v1/units', unit('no-such-place'))).body)
    expect((await admin('POST', '/api/v1/devices', { unitId: fx.B.unit, kind: 'smoke_detector' })).body).toEqual(
      (await admin('POST', '/api/v1/devices', { unitId: 'no-such-unit', kind: 'smoke_detector' })).body
    )
    const street = (parentId: string) => ({ parentId, name: 'x', level: 'street' })
    expect((await admin('POST', '/api/v1/jurisdictions', street(DISTRICT.B))).body).toEqual(
      (await admin('POST', '/api/v1/jurisdictions', street('no-such-place'))).body
    )
  })
})

// --- the live channel --------------------------------------------------------------------------------------------

describe('the live channel', () => {
  /** Root's socket: sees every change, so it gives each change's event id, and what a caller of A must not get. */
  let observer: LiveClient
  beforeAll(async () => {
    observer = await LiveClient.open(t.httpPort, tokens.root)
  })
  afterAll(async () => {
    await observer?.close()
  })

  const isAlert = (id: string) => (m: LiveMessage) => m.type === 'alert' && (m.alert as { id: string }).id === id
  const isDevice = (deviceId: string, online: boolean) => (m: LiveMessage) => m.type === 'device' && m.deviceId === deviceId && m.online === online

  /** Make a change on the side; its event id (as the observer got it), and what undoes it. */
  type Change = (side: Side) => Promise<{ eventId: string; undo?: () => Promise<void> }>
  const alertChange: Change = async (side) => {
    const alert = await raise(fx[side].unit)
    return { eventId: (await observer.next(isAlert(alert.id))).eventId! }
  }
  const CHANGES: Record<string, { change: Change; resumed: boolean }> = {
    'WS /live alert change': { change: alertChange, resumed: false },
    'WS /live device online': {
      change: async (side) => {
        const from = observer.messages.length
        const device = await mqtt.connectAsync(t.mqttUrl, { clientId: fx[side].device, username: fx[side].device, password: fx[side].secret, reconnectPeriod: 0 })
        const online = await observer.next(isDevice(fx[side].device, true), 5000, from)
        return {
          eventId: online.eventId!,
          // Offline again before the next cell brings it online (a new connection replacing a live one changes nothing).
          undo: async () => {
            const at = observer.messages.length
            await device.endAsync()
            await observer.next(isDevice(fx[side].device, false), 5000, at)
          }
        }
      },
      resumed: false
    },
    'WS /live resumed: alert change': { change: alertChange, resumed: true }
  }

  /** Nothing of B in what the socket got: no id of B's unit, device or district. */
  const mentionsB = (messages: LiveMessage[]) => [fx.B.unit, fx.B.device, DISTRICT.B].some((id) => JSON.stringify(messages).includes(`"${id}"`))

  it('has a change for every row and a row for every change', () => {
    expect(LIVE.map(([e]) => e).sort()).toEqual(Object.keys(CHANGES).sort())
  })

  const liveCells = LIVE.flatMap(([row, got]) =>
    WHO.flatMap((who, i) => SIDES.map((side, j): [string, Who, string, Side, Got] => [`${who} ${row} on ${side}'s → ${got[i]![j]!}`, who, row, side, got[i]![j]!]))
  )

  it.each(liveCells)('%s', async (_label, who, row, side, expected) => {
    const { change, resumed } = CHANGES[row]!
    if (resumed) {
      // Connected after the change, from the last event id before it: the backlog (everything before `ready`).
      const last = observer.lastEventId()
      const { eventId, undo } = await change(side)
      const socket = await LiveClient.open(t.httpPort, tokens[who], last)
      const got = socket.backlog().some((m) => m.eventId === eventId)
      expect(got ? R : N).toBe(expected)
      if (expected === N) expect(mentionsB(socket.messages)).toBe(false)
      await socket.close()
      await undo?.()
      return
    }
    const socket = await LiveClient.open(t.httpPort, tokens[who])
    const { eventId, undo } = await change(side)
    if (expected === R) {
      await socket.next((m) => m.eventId === eventId)
    } else {
      // Changes reach a socket in the stream's order: had this one been sent, it would be in before a later one of A.
      const sentinel = await raise(fx.A.unit)
      await socket.next(isAlert(sentinel.id))
      expect(socket.messages.some((m) => m.eventId === eventId)).toBe(false)
      expect(mentionsB(socket.messages)).toBe(false)
    }
    await socket.close()
    await undo?.()
  })
})

// --- credentials -------------------------------------------------------------------------------------------------

describe('credentials', () => {
  const call = (token?: string) =>
    fetch(`${base}/api/v1/units`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }).then((r) => r.status)

  it('answers 401 without a token, and to garbage', async () => {
    expect(await call()).toBe(401)
    expect(await call('')).toBe(401)
    expect(await call('not-a-token')).toBe(401)
    expect(await call('eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl')).toBe(401)
    expect(await call(`fwk_000000000000_${'a'.repeat(43)}`)).toBe(401)
    expect(await call(ADMIN_TOKEN)).toBe(401) // the bootstrap token opens /auth/bootstrap only
  })

  it('answers 401 to an expired access token, and to one signed with another key', async () => {
    const viewer = (await t.app.auth.listUsers(null, { limit: 1000, offset: 0 })).items.find((u) => u.username === 'viewer-a')!
    const key = new Uint8Array(deriveJwtSecret(ADMIN_TOKEN))
    const now = Math.floor(Date.now() / 1000)
    const token = (exp: number, k = key) =>
      new SignJWT({ role: 'viewer' }).setProtectedHeader({ alg: 'HS256' }).setSubject(viewer.id).setIssuer('firewatch').setIssuedAt(now - 3600).setExpirationTime(exp).sign(k)
    // The same token, unexpired, is good: what fails below is the expiry and the key.
    expect(await call(await token(now + 600))).toBe(200)
    expect(await call(await token(now - 60))).toBe(401)
    expect(await call(await token(now + 600, new Uint8Array(32).fill(7)))).toBe(401)
  })

  it('answers 401 to a revoked API key', async () => {
    const { key, apiKey } = await root<{ key: string; apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: 'to-revoke', role: 'viewer', jurisdictionId: DISTRICT.A })
    expect(await call(key)).toBe(200)
    expect((await t.api('DELETE', `/api/v1/api-keys/${apiKey.id}`)).status).toBe(204)
    expect(await call(key)).toBe(401)
  })

  it('answers 401 to the tokens of a disabled user, refresh included', async () => {
    const id = await user('to-disable', 'operator', DISTRICT.A)
    const session = await loginAt(base, 'to-disable', password('to-disable'))
    expect(await call(session.accessToken)).toBe(200)
    expect((await t.api('PATCH', `/api/v1/users/${id}`, { disabled: true })).status).toBe(200)
    expect(await call(session.accessToken)).toBe(401)
    const refreshed = await fetch(`${base}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: session.refreshToken })
    })
    expect(refreshed.status).toBe(401)
  })

  it('the live channel refuses what the API refuses, closing with 4401 before it sends anything', async () => {
    const viewer = (await t.app.auth.listUsers(null, { limit: 1000, offset: 0 })).items.find((u) => u.username === 'viewer-a')!
    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({ role: 'viewer' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(viewer.id)
      .setIssuer('firewatch')
      .setIssuedAt(now - 3600)
      .setExpirationTime(now - 60)
      .sign(new Uint8Array(deriveJwtSecret(ADMIN_TOKEN)))
    const revoked = await root<{ key: string; apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: 'live-revoked', role: 'viewer', jurisdictionId: DISTRICT.A })
    expect((await t.api('DELETE', `/api/v1/api-keys/${revoked.apiKey.id}`)).status).toBe(204)
    const id = await user('live-disabled', 'viewer', DISTRICT.A)
    const disabled = (await loginAt(base, 'live-disabled', password('live-disabled'))).accessToken
    expect((await t.api('PATCH', `/api/v1/users/${id}`, { disabled: true })).status).toBe(200)

    const refused: Record<string, Record<string, string>> = {
      none: {},
      garbage: { token: 'not-a-token' },
      'the bootstrap token': { token: ADMIN_TOKEN },
      'an expired access token': { token: expired },
      'a revoked API key': { token: revoked.key },
      "a disabled user's token": { token: disabled }
    }
    for (const [what, query] of Object.entries(refused)) {
      const socket = await LiveClient.connect(t.httpPort, query)
      expect((await socket.whenClosed()).code, what).toBe(4401)
      expect(socket.messages, what).toEqual([])
    }
  })

  it('answers 429 to the 11th login attempt within a minute for one username, not to another username', async () => {
    const login = (username: string) =>
      fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: 'wrong password' })
      }).then((r) => r.status)
    const username = `guess-${next()}`
    for (let i = 1; i <= 10; i++) expect(await login(username), `attempt ${i}`).toBe(401)
    expect(await login(username)).toBe(429)
    expect(await login(`${username}-other`)).toBe(401)
  })

  it('rotates refresh tokens; reusing a used one is refused and revokes the newer token of the same login', async () => {
    await user('rotator', 'viewer', DISTRICT.A)
    const refresh = async (refreshToken: string) => {
      const r = await fetch(`${base}/api/v1/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken }) })
      return { status: r.status, body: (await r.json()) as { accessToken: string; refreshToken: string } }
    }
    const first = await loginAt(base, 'rotator', password('rotator'))
    const other = await loginAt(base, 'rotator', password('rotator')) // another login: another family
    const second = await refresh(first.refreshToken)
    expect(second.status).toBe(200)
    expect(second.body.refreshToken).not.toBe(first.refreshToken)
    expect(await call(second.body.accessToken)).toBe(200)

    expect((await refresh(first.refreshToken)).status).toBe(401) // used already: someone has a copy
    expect((await refresh(second.body.refreshToken)).status).toBe(401) // so the family is ended
    expect((await refresh(other.refreshToken)).status).toBe(200) // the other login is untouched
  })
})
