/**
 * Who may see and do what with inspection draws, conflicts and reports: every route driven as every kind of principal
 * against a record in the caller's district (A) and one in the neighbouring district (B), the expected status written
 * out (not derived from `can()`), in the conventions of test/access-matrix.test.ts: outside the caller's subtree reads
 * as missing (404, or 400 "does not exist" for a record named in a body) before the role is looked at; inside it, a
 * role that may not act gets 403; a list holds the caller's subtree only. The public list of a published draw is for
 * anyone, credentials or not (一公开).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { Draw } from '../schemas/inspections.js'

type Side = 'A' | 'B'
const SIDES: Side[] = ['A', 'B']
const WHO = ['root', 'admin-a', 'operator-a', 'inspector-a', 'viewer-a', 'key-a'] as const
type Who = (typeof WHO)[number]

type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
type Pair = [Expect, Expect]
type Row = [root: Pair, admin: Pair, operator: Pair, inspector: Pair, viewer: Pair, key: Pair]

// prettier-ignore
const READS: [string, Row][] = [
  //                                          root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)
  ['GET /inspections/draws',                 [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /inspections/draws?jurisdictionId=', [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H]]],
  ['GET /inspections/draws/{id}',            [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /inspections/draws/{id}/candidates', [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /inspections/draws/{id}/replay',     [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /inspections/draws/{id}/public',     [[200, 200], [200, 200],  [200, 200],  [200, 200],  [200, 200],  [200, 200]]],
  ['GET /units/{id}/conflicts',              [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]],
  ['GET /reports/summary',                   [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404]]]
]

// prettier-ignore
const WRITES: [string, Row][] = [
  //                                          root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)
  ['POST /inspections/draws',                [[201, 201], [201, 400],  [403, 403],  [201, 400],  [403, 403],  [403, 403]]],
  ['POST /inspections/draws/{id}/publish',   [[200, 200], [200, 404],  [403, 404],  [200, 404],  [403, 404],  [403, 404]]],
  ['POST /units/{id}/conflicts',             [[201, 201], [201, 404],  [403, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['DELETE /units/{id}/conflicts/{userId}',  [[204, 204], [204, 404],  [403, 404],  [403, 404],  [403, 404],  [403, 404]]]
]

// --- the world ---------------------------------------------------------------------------------------------------

let t: TestApp
let base: string
const as = {} as Record<Who, ApiCall>
const CITY = 'city-m'
const DISTRICT: Record<Side, string> = { A: 'district-ma', B: 'district-mb' }
interface Fixture {
  unit: string
  /** An inspector bound to the district: the one conflicts are recorded for. */
  inspector: string
  /** A published draw of the district. */
  draw: string
}
const fx = {} as Record<Side, Fixture>

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}
const password = (username: string) => `${username}-password-123`
async function user(username: string, role: string, jurisdictionId: string): Promise<string> {
  return (await root<{ id: string }>('POST', '/api/v1/users', { username, displayName: username, password: password(username), role, jurisdictionId })).id
}
const newDraw = async (side: Side) => (await root<Draw>('POST', '/api/v1/inspections/draws', { jurisdictionId: DISTRICT[side], targets: 1, seed: `matrix-${side}` })).id

beforeAll(async () => {
  t = await startTestApp()
  base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api
  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: 'City M', level: 'city' })
  for (const side of SIDES) {
    await root('POST', '/api/v1/jurisdictions', { id: DISTRICT[side], parentId: CITY, name: `District ${side}`, level: 'district' })
    const unit = `unit-m${side.toLowerCase()}`
    await root('POST', '/api/v1/units', { id: unit, jurisdictionId: DISTRICT[side], name: unit, address: 'Road 1', category: 'key', contactName: 'Duty', contactPhone: '0571-0000000' })
    const inspector = await user(`insp-m${side.toLowerCase()}`, 'inspector', DISTRICT[side])
    const draw = await newDraw(side)
    await root('POST', `/api/v1/inspections/draws/${draw}/publish`)
    fx[side] = { unit, inspector, draw }
  }
  for (const role of ['admin', 'operator', 'inspector', 'viewer'] as const) {
    const username = `${role}-a` as Who
    await user(username, role, DISTRICT.A)
    const { accessToken } = await loginAt(base, username, password(username))
    as[username] = apiWithToken(base, () => accessToken)
  }
  const key = await root<{ key: string }>('POST', '/api/v1/api-keys', { name: 'key-a', role: 'operator', jurisdictionId: DISTRICT.A })
  as['key-a'] = apiWithToken(base, () => key.key)
})
afterAll(async () => {
  await t?.dispose()
})

// --- the endpoints -----------------------------------------------------------------------------------------------

interface Outcome {
  status: number
  body: unknown
  find?: string
  after?: (ok: boolean) => Promise<void>
}
type Call = (api: ApiCall, side: Side) => Promise<Outcome>
const list = async (api: ApiCall, path: string, find: string): Promise<Outcome> => ({ ...(await api('GET', `/api/v1${path}`)), find })
const read = (api: ApiCall, path: string): Promise<Outcome> => api('GET', `/api/v1${path}`)
const conflictsOf = async (side: Side) => (await root<{ items: { userId: string }[] }>('GET', `/api/v1/units/${fx[side].unit}/conflicts`)).items.map((c) => c.userId)

const ENDPOINTS: Record<string, Call> = {
  'GET /inspections/draws': (api, s) => list(api, '/inspections/draws?limit=1000', fx[s].draw),
  'GET /inspections/draws?jurisdictionId=': (api, s) => list(api, `/inspections/draws?jurisdictionId=${DISTRICT[s]}`, fx[s].draw),
  'GET /inspections/draws/{id}': (api, s) => read(api, `/inspections/draws/${fx[s].draw}`),
  'GET /inspections/draws/{id}/candidates': (api, s) => read(api, `/inspections/draws/${fx[s].draw}/candidates`),
  'GET /inspections/draws/{id}/replay': (api, s) => read(api, `/inspections/draws/${fx[s].draw}/replay`),
  'GET /inspections/draws/{id}/public': (api, s) => read(api, `/inspections/draws/${fx[s].draw}/public`),
  'GET /units/{id}/conflicts': (api, s) => read(api, `/units/${fx[s].unit}/conflicts`),
  'GET /reports/summary': (api, s) => read(api, `/reports/summary?jurisdictionId=${DISTRICT[s]}`),

  'POST /inspections/draws': async (api, s) => {
    const before = (await root<{ total: number }>('GET', `/api/v1/inspections/draws?jurisdictionId=${DISTRICT[s]}`)).total
    const r = await api('POST', '/api/v1/inspections/draws', { jurisdictionId: DISTRICT[s], targets: 1 })
    return {
      ...r,
      after: async (ok) => expect((await root<{ total: number }>('GET', `/api/v1/inspections/draws?jurisdictionId=${DISTRICT[s]}`)).total).toBe(before + (ok ? 1 : 0))
    }
  },
  'POST /inspections/draws/{id}/publish': async (api, s) => {
    const id = await newDraw(s)
    return {
      ...(await api('POST', `/api/v1/inspections/draws/${id}/publish`)),
      after: async (ok) => expect((await root<Draw>('GET', `/api/v1/inspections/draws/${id}`)).publishedAt !== null).toBe(ok)
    }
  },
  'POST /units/{id}/conflicts': async (api, s) => {
    await t.api('DELETE', `/api/v1/units/${fx[s].unit}/conflicts/${fx[s].inspector}`)
    return {
      ...(await api('POST', `/api/v1/units/${fx[s].unit}/conflicts`, { userId: fx[s].inspector, reason: 'matrix' })),
      after: async (ok) => expect((await conflictsOf(s)).includes(fx[s].inspector)).toBe(ok)
    }
  },
  'DELETE /units/{id}/conflicts/{userId}': async (api, s) => {
    await t.api('POST', `/api/v1/units/${fx[s].unit}/conflicts`, { userId: fx[s].inspector, reason: 'matrix' })
    return {
      ...(await api('DELETE', `/api/v1/units/${fx[s].unit}/conflicts/${fx[s].inspector}`)),
      after: async (ok) => expect((await conflictsOf(s)).includes(fx[s].inspector)).toBe(!ok)
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
  table.flatMap(([endpoint, row]) => WHO.flatMap((who, i) => SIDES.map((side, j): Cell => [`${who} ${endpoint} on ${side}'s → ${row[i]![j]}`, who, endpoint, side, row[i]![j]!])))

describe('the access matrix of inspections and reports', () => {
  it('has a call for every row and a row for every call', () => {
    expect([...READS, ...WRITES].map(([e]) => e).sort()).toEqual(Object.keys(ENDPOINTS).sort())
  })

  it.each(cells(READS))('%s', async (_label, who, endpoint, side, expected) => {
    check(expected, await ENDPOINTS[endpoint]!(as[who], side))
  })

  it.each(cells(WRITES))('%s', async (_label, who, endpoint, side, expected) => {
    const r = await ENDPOINTS[endpoint]!(as[who], side)
    check(expected, r)
    await r.after?.(typeof expected === 'number' && expected < 300)
  })
})

describe('what a caller bound to A can learn about B', () => {
  it('a draw of B answers exactly as a missing one, for every role and action', async () => {
    for (const who of WHO.filter((w) => w !== 'root')) {
      for (const [method, suffix] of [['GET', ''], ['GET', '/candidates'], ['GET', '/replay'], ['POST', '/publish']] as const) {
        const theirs = await as[who](method, `/api/v1/inspections/draws/${fx.B.draw}${suffix}`)
        const none = await as[who](method, `/api/v1/inspections/draws/987654321${suffix}`)
        expect(theirs.status, `${who} ${suffix}`).toBe(404)
        expect((theirs.body as { message: string }).message.replace(fx.B.draw, '{id}')).toBe((none.body as { message: string }).message.replace('987654321', '{id}'))
      }
    }
  })

  it("B's inspector named in a conflict reads as a user that does not exist", async () => {
    const theirs = await as['admin-a']('POST', `/api/v1/units/${fx.A.unit}/conflicts`, { userId: fx.B.inspector, reason: 'x' })
    const none = await as['admin-a']('POST', `/api/v1/units/${fx.A.unit}/conflicts`, { userId: 'no-such-user', reason: 'x' })
    expect(theirs.status).toBe(400)
    expect(theirs.body).toEqual(none.body)
  })

  it('the public list needs no credentials, and shows nothing before publication', async () => {
    expect((await fetch(`${base}/api/v1/inspections/draws/${fx.B.draw}/public`)).status).toBe(200)
    const unpublished = await newDraw('B')
    const r = await fetch(`${base}/api/v1/inspections/draws/${unpublished}/public`)
    expect(r.status).toBe(404)
    expect(await r.json()).toMatchObject({ code: 'FW_ERR_NOT_FOUND' })
  })
})
