/**
 * Who may see and do what with follow-up cases and credit records, in the style of test/access-matrix.test.ts:
 * every case and credit route as every kind of principal, against a record in the caller's district A (its unit in a
 * street below A) and one in the neighbouring district B, the expected status written out. Outside the caller's
 * subtree reads as missing (404, or 400 "does not exist" for a unit named in a body), checked before the role.
 * Inspectors and administrators act on cases; operators (and they) may record a rectification report; viewers read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { Case, CreditStandingReply } from '../schemas/cases.js'

type Side = 'A' | 'B'
const SIDES: Side[] = ['A', 'B']
const WHO = ['root', 'admin-a', 'operator-a', 'inspector-a', 'viewer-a', 'key-a', 'inspector-key-a'] as const
type Who = (typeof WHO)[number]
const ACTOR: Record<Who, string> = {
  root: 'root',
  'admin-a': 'admin-a',
  'operator-a': 'operator-a',
  'inspector-a': 'inspector-a',
  'viewer-a': 'viewer-a',
  'key-a': 'api-key:key-a',
  'inspector-key-a': 'api-key:inspector-key-a'
}

type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
type Pair = [Expect, Expect]
type Row = [root: Pair, admin: Pair, operator: Pair, inspector: Pair, viewer: Pair, key: Pair, inspectorKey: Pair]

// prettier-ignore
const READS: [string, Row][] = [
  //                                   root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)  inspector-key-a
  ['GET /cases',                      [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H],           [L, H]]],
  ['GET /cases?unitId=',              [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H],           [L, H]]],
  ['GET /cases/{id}',                 [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404],       [200, 404]]],
  ['GET /credit',                     [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H],           [L, H]]],
  ['GET /credit?dishonest=true',      [[L, L],     [L, H],      [L, H],      [L, H],      [L, H],      [L, H],           [L, H]]],
  ['GET /units/{id}/credit',          [[200, 200], [200, 404],  [200, 404],  [200, 404],  [200, 404],  [200, 404],       [200, 404]]]
]

// prettier-ignore
const WRITES: [string, Row][] = [
  //                                   root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)  inspector-key-a
  ['POST /cases',                     [[201, 201], [201, 400],  [403, 403],  [201, 400],  [403, 403],  [403, 403],       [201, 400]]],
  ['POST /cases/{id}/assign',         [[200, 200], [200, 404],  [403, 404],  [200, 404],  [403, 404],  [403, 404],       [200, 404]]],
  ['POST /cases/{id}/submit',         [[200, 200], [200, 404],  [200, 404],  [200, 404],  [403, 404],  [200, 404],       [200, 404]]],
  ['POST /cases/{id}/verify',         [[200, 200], [200, 404],  [403, 404],  [200, 404],  [403, 404],  [403, 404],       [200, 404]]],
  ['POST /cases/{id}/reject',         [[200, 200], [200, 404],  [403, 404],  [200, 404],  [403, 404],  [403, 404],       [200, 404]]],
  ['POST /cases/{id}/close',          [[200, 200], [200, 404],  [403, 404],  [200, 404],  [403, 404],  [403, 404],       [200, 404]]]
]

let t: TestApp
const as = {} as Record<Who, ApiCall>
const UNIT: Record<Side, string> = { A: 'unit-a', B: 'unit-b' }
/** An inspector covering each side's unit (the assignee of the assign rows). */
const INSPECTOR = {} as Record<Side, string>
/** A dishonest case per side, there from the start (the read rows' target). */
const fixture = {} as Record<Side, string>

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** A new case of the side's unit, brought by root to the state the step needs. */
async function caseFor(side: Side, state: 'assigned' | 'rectification_submitted' | 'verified'): Promise<string> {
  const k = await root<Case>('POST', '/api/v1/cases', { unitId: UNIT[side], severity: 'general', title: 'fire door wedged open' })
  if (state !== 'assigned') await root('POST', `/api/v1/cases/${k.id}/submit`, {})
  if (state === 'verified') await root('POST', `/api/v1/cases/${k.id}/verify`, {})
  return k.id
}

interface Outcome {
  status: number
  body: unknown
  /** For lists: what should or should not be in it. */
  find?: { key: 'id' | 'unitId'; value: string }
}

const step = (name: string, state: Parameters<typeof caseFor>[1], body: (side: Side) => Record<string, unknown> = () => ({ comment: 'checked on site' })) =>
  async (api: ApiCall, side: Side): Promise<Outcome> => api('POST', `/api/v1/cases/${await caseFor(side, state)}/${name}`, body(side))

const ENDPOINTS: Record<string, (api: ApiCall, side: Side) => Promise<Outcome>> = {
  'GET /cases': async (api, s) => ({ ...(await api('GET', '/api/v1/cases?limit=1000')), find: { key: 'id', value: fixture[s] } }),
  'GET /cases?unitId=': async (api, s) => ({ ...(await api('GET', `/api/v1/cases?unitId=${UNIT[s]}&limit=1000`)), find: { key: 'id', value: fixture[s] } }),
  'GET /cases/{id}': (api, s) => api('GET', `/api/v1/cases/${fixture[s]}`),
  'GET /credit': async (api, s) => ({ ...(await api('GET', '/api/v1/credit?limit=1000')), find: { key: 'unitId', value: UNIT[s] } }),
  'GET /credit?dishonest=true': async (api, s) => ({ ...(await api('GET', '/api/v1/credit?dishonest=true&limit=1000')), find: { key: 'unitId', value: UNIT[s] } }),
  'GET /units/{id}/credit': (api, s) => api('GET', `/api/v1/units/${UNIT[s]}/credit`),
  'POST /cases': (api, s) => api('POST', '/api/v1/cases', { unitId: UNIT[s], severity: 'major', title: 'sprinkler valve closed', comment: 'found on inspection' }),
  'POST /cases/{id}/assign': step('assign', 'assigned', (s) => ({ assignee: INSPECTOR[s] })),
  'POST /cases/{id}/submit': step('submit', 'assigned'),
  'POST /cases/{id}/verify': step('verify', 'rectification_submitted'),
  'POST /cases/{id}/reject': step('reject', 'rectification_submitted'),
  'POST /cases/{id}/close': step('close', 'verified')
}

function check(who: Who, expected: Expect, r: Outcome): void {
  const context = JSON.stringify(r.body).slice(0, 300)
  if (typeof expected === 'number') {
    expect(r.status, context).toBe(expected)
    if (expected === 403) expect(r.body).toMatchObject({ code: 'FW_ERR_FORBIDDEN' })
    if (expected === 404) expect(r.body).toMatchObject({ code: 'FW_ERR_NOT_FOUND' })
    if (expected === 400) expect(r.body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'unitId' })
    return
  }
  expect(r.status, context).toBe(200)
  const items = (r.body as { items: Record<string, unknown>[] }).items.map((i) => i[r.find!.key])
  if (expected === L) expect(items).toContain(r.find!.value)
  else expect(items).not.toContain(r.find!.value)
  void who
}

beforeAll(async () => {
  t = await startTestApp()
  const base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api
  await root('POST', '/api/v1/jurisdictions', { id: 'city-c', name: 'City C', level: 'city' })
  for (const side of SIDES) await root('POST', '/api/v1/jurisdictions', { id: `district-${side.toLowerCase()}`, parentId: 'city-c', name: `District ${side}`, level: 'district' })
  await root('POST', '/api/v1/jurisdictions', { id: 'street-a1', parentId: 'district-a', name: 'Street A1', level: 'street' })
  for (const side of SIDES) {
    const jurisdictionId = side === 'A' ? 'street-a1' : 'district-b'
    await root('POST', '/api/v1/units', { id: UNIT[side], jurisdictionId, name: `Unit ${side}`, address: `${side} Road 1`, category: 'key', contactName: 'Duty Manager', contactPhone: '0571-0000000' })
  }
  for (const role of ['admin', 'operator', 'inspector', 'viewer'] as const) {
    const username = `${role}-a`
    const password = `${username}-password-123`
    const u = await root<{ id: string }>('POST', '/api/v1/users', { username, displayName: username, password, role, jurisdictionId: 'district-a' })
    if (role === 'inspector') INSPECTOR.A = u.id
    const { accessToken } = await loginAt(base, username, password)
    as[username as Who] = apiWithToken(base, () => accessToken)
  }
  INSPECTOR.B = (await root<{ id: string }>('POST', '/api/v1/users', { username: 'inspector-b', displayName: 'inspector-b', password: 'inspector-b-password', role: 'inspector', jurisdictionId: 'district-b' })).id
  for (const [who, role] of [['key-a', 'operator'], ['inspector-key-a', 'inspector']] as const) {
    const { key } = await root<{ key: string }>('POST', '/api/v1/api-keys', { name: who, role, jurisdictionId: 'district-a' })
    as[who] = apiWithToken(base, () => key)
  }
  // Three refused rectifications: 12 points, past the threshold of 10 — each unit is listed as dishonest.
  for (const side of SIDES) {
    fixture[side] = await caseFor(side, 'assigned')
    for (let i = 0; i < 3; i++) {
      await root('POST', `/api/v1/cases/${fixture[side]}/submit`, {})
      await root('POST', `/api/v1/cases/${fixture[side]}/reject`, {})
    }
  }
})
afterAll(async () => {
  await t?.dispose()
})

describe('the cases access matrix', () => {
  it('has a call for every row and a row for every call', () => {
    expect([...READS, ...WRITES].map(([e]) => e).sort()).toEqual(Object.keys(ENDPOINTS).sort())
  })

  const cells = [...READS, ...WRITES].flatMap(([endpoint, row]) =>
    WHO.flatMap((who, i) => SIDES.map((side, j) => [`${who} ${endpoint} on ${side} → ${row[i]![j]}`, who, endpoint, side, row[i]![j]!] as const))
  )
  it.each(cells)('%s', async (_label, who, endpoint, side, expected) => {
    check(who, expected, await ENDPOINTS[endpoint]!(as[who], side))
  })

  it('records the caller as the actor of a step, an API key as api-key:{name}', async () => {
    for (const who of ['inspector-key-a', 'key-a', 'admin-a'] as const) {
      const id = await caseFor('A', 'assigned')
      expect((await as[who]('POST', `/api/v1/cases/${id}/submit`, { attachments: [{ name: 'photo', ref: 'oss://bucket/p1.jpg' }] })).status).toBe(200)
      const d = (await t.api<{ transitions: { action: string; actor: string }[] }>('GET', `/api/v1/cases/${id}`)).body
      expect(d.transitions.at(-1)).toMatchObject({ action: 'submitted', actor: ACTOR[who] })
    }
  })
})

describe('requests', () => {
  it('answers 401 without credentials, 404 for a case that does not exist', async () => {
    for (const path of ['/api/v1/cases', '/api/v1/credit', `/api/v1/cases/${fixture.A}`]) {
      expect((await fetch(`http://127.0.0.1:${t.httpPort}${path}`)).status).toBe(401)
    }
    for (const id of ['999999999', 'abc']) {
      expect((await t.api('GET', `/api/v1/cases/${id}`)).status).toBe(404)
      for (const s of ['submit', 'verify', 'reject', 'close']) expect((await t.api('POST', `/api/v1/cases/${id}/${s}`, {})).status).toBe(404)
      expect((await t.api('POST', `/api/v1/cases/${id}/assign`, { assignee: INSPECTOR.A })).status).toBe(404)
    }
    expect((await t.api('GET', '/api/v1/units/no-such-unit/credit')).status).toBe(404)
  })

  it('assigns only an inspector the caller can see: one above its subtree reads as missing', async () => {
    const cityInspector = await root<{ id: string }>('POST', '/api/v1/users', { username: 'inspector-city', displayName: 'inspector-city', password: 'inspector-city-password', role: 'inspector', jurisdictionId: 'city-c' })
    const id = await caseFor('A', 'assigned')
    const hidden = await as['admin-a']<{ code: string; field?: string; message: string }>('POST', `/api/v1/cases/${id}/assign`, { assignee: cityInspector.id })
    expect(hidden).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'assignee', message: `user ${cityInspector.id} does not exist` } })
    expect((await t.api<Case>('POST', `/api/v1/cases/${id}/assign`, { assignee: cityInspector.id })).body.assignee).toBe(cityInspector.id)
  })

  it('publishes the routes in OpenAPI under their tags', async () => {
    const doc = (await (await fetch(`http://127.0.0.1:${t.httpPort}/docs/json`)).json()) as { paths: Record<string, Record<string, { tags: string[] }>> }
    expect(doc.paths['/api/v1/cases/{id}/verify']!.post!.tags).toEqual(['cases'])
    expect(doc.paths['/api/v1/units/{id}/credit']!.get!.tags).toEqual(['credit'])
  })

  it('validates bodies and queries, naming the field', async () => {
    const id = await caseFor('A', 'assigned')
    const bad = await t.api<{ code: string; field?: string }>('POST', `/api/v1/cases/${id}/submit`, { attachments: [{ name: 'photo' }] })
    expect(bad).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'attachments.0.ref' } })
    const past = await t.api<{ field?: string }>('POST', '/api/v1/cases', { unitId: UNIT.A, severity: 'major', title: 'x', deadline: '2000-01-01T00:00:00Z' })
    expect(past).toMatchObject({ status: 400, body: { field: 'deadline' } })
    const foreign = await t.api<{ field?: string }>('POST', '/api/v1/cases', { unitId: UNIT.A, severity: 'major', title: 'x', alertIds: ['1'] })
    expect(foreign).toMatchObject({ status: 400, body: { field: 'alertIds' } })
    expect((await t.api<{ field?: string }>('GET', '/api/v1/cases?status=lost')).body).toMatchObject({ field: 'status' })
    const listed = (await t.api<{ items: CreditStandingReply[] }>('GET', '/api/v1/credit?dishonest=true')).body.items
    // The matrix's own steps added more entries (rejects, repeated violations): at least the fixture's 12 points.
    const a = listed.find((s) => s.unitId === UNIT.A)!
    expect(a).toMatchObject({ dishonest: true, threshold: 10 })
    expect(a.points).toBeGreaterThanOrEqual(12)
    expect(a.reasons.filter((r) => r.startsWith('rectification refused')).length).toBeGreaterThanOrEqual(3)
  })
})
