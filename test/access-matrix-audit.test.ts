/**
 * Who may read and verify the audit trail, in the style of test/access-matrix.test.ts: every audit route as every kind
 * of principal, against an entry about district A (the callers' own; its unit sits in a street below A) and one about
 * the neighbouring district B, with the expected outcome written out. Reading is for administrators and inspectors,
 * each seeing the entries of their subtree; entries with no jurisdiction (system-wide: the administrators of the
 * whole system) only callers bound to none. Verifying is for administrators: the report names entries by seq only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { AuditEntry } from '../src/audit/audit-log.js'

type Side = 'A' | 'B'
const SIDES: Side[] = ['A', 'B']
const WHO = ['root', 'admin-a', 'operator-a', 'inspector-a', 'viewer-a', 'key-a', 'inspector-key-a'] as const
type Who = (typeof WHO)[number]

/** A status, or for lists: 200 with the target entry in it (L) / 200 without it (H). */
type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
type Pair = [Expect, Expect]
type Row = [root: Pair, admin: Pair, operator: Pair, inspector: Pair, viewer: Pair, key: Pair, inspectorKey: Pair]

// prettier-ignore
const READS: [string, Row][] = [
  //                                      root        admin-a      operator-a   inspector-a  viewer-a     key-a (operator)  inspector-key-a
  ['GET /audit',                         [[L, L],     [L, H],      [403, 403],  [L, H],      [403, 403],  [403, 403],       [L, H]]],
  ['GET /audit?subjectKind=&subjectId=', [[L, L],     [L, H],      [403, 403],  [L, H],      [403, 403],  [403, 403],       [L, H]]],
  ['GET /audit?actor=&action=',          [[L, L],     [L, H],      [403, 403],  [L, H],      [403, 403],  [403, 403],       [L, H]]],
  ['GET /audit?from=&to=',               [[L, L],     [L, H],      [403, 403],  [L, H],      [403, 403],  [403, 403],       [L, H]]]
]

// Not about A or B.
// prettier-ignore
const UNTARGETED: [string, [root: Expect, admin: Expect, operator: Expect, inspector: Expect, viewer: Expect, key: Expect, inspectorKey: Expect]][] = [
  //                                      root  admin-a  operator-a  inspector-a  viewer-a  key-a  inspector-key-a
  ['GET /audit (system-wide entry)',     [L,    H,       403,        H,           403,      403,   H]],
  ['GET /audit/verify',                  [200,  200,     403,        403,         403,      403,   403]]
]

let t: TestApp
const as = {} as Record<Who, ApiCall>
/** Per side: the entry of the unit created there. */
const target = {} as Record<Side, AuditEntry>
/** The entry of the first administrator (no jurisdiction). */
let systemWide: AuditEntry
let window: { from: string; to: string }

interface Outcome {
  status: number
  body: unknown
  /** For lists: the seq of the entry that should or should not be in it. */
  find?: number
}
const list = async (api: ApiCall, query: string, find: number): Promise<Outcome> => ({ ...(await api('GET', `/api/v1/audit?limit=1000&${query}`)), find })

const ENDPOINTS: Record<string, (api: ApiCall, side: Side) => Promise<Outcome>> = {
  'GET /audit': (api, s) => list(api, '', target[s].seq),
  'GET /audit?subjectKind=&subjectId=': (api, s) => list(api, `subjectKind=unit&subjectId=${target[s].subjectId}`, target[s].seq),
  'GET /audit?actor=&action=': (api, s) => list(api, 'actor=root&action=unit.created', target[s].seq),
  'GET /audit?from=&to=': (api, s) => list(api, `from=${window.from}&to=${window.to}`, target[s].seq),
  'GET /audit (system-wide entry)': (api) => list(api, '', systemWide.seq),
  'GET /audit/verify': (api) => api('GET', '/api/v1/audit/verify')
}

function check(expected: Expect, r: Outcome): void {
  const context = JSON.stringify(r.body).slice(0, 300)
  if (typeof expected === 'number') {
    expect(r.status, context).toBe(expected)
    if (expected === 403) expect(r.body).toMatchObject({ code: 'FW_ERR_FORBIDDEN' })
    if (expected === 200 && r.find === undefined) expect(r.body).toMatchObject({ ok: true, broken: null })
    return
  }
  expect(r.status, context).toBe(200)
  const seqs = (r.body as { items: AuditEntry[] }).items.map((e) => e.seq)
  if (expected === L) expect(seqs).toContain(r.find)
  else expect(seqs).not.toContain(r.find)
}

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

beforeAll(async () => {
  t = await startTestApp()
  const base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api
  await root('POST', '/api/v1/jurisdictions', { id: 'city-c', name: 'City C', level: 'city' })
  for (const side of SIDES) await root('POST', '/api/v1/jurisdictions', { id: `district-${side.toLowerCase()}`, parentId: 'city-c', name: `District ${side}`, level: 'district' })
  await root('POST', '/api/v1/jurisdictions', { id: 'street-a1', parentId: 'district-a', name: 'Street A1', level: 'street' })
  // A second's margin either side: the window is compared with the database clock.
  const from = new Date(Date.now() - 1000).toISOString()
  for (const side of SIDES) {
    const id = `unit-${side.toLowerCase()}`
    const jurisdictionId = side === 'A' ? 'street-a1' : 'district-b'
    await root('POST', '/api/v1/units', { id, jurisdictionId, name: `Unit ${side}`, address: `${side} Road 1`, category: 'key', contactName: 'Duty Manager', contactPhone: '0571-0000000' })
  }
  window = { from, to: new Date(Date.now() + 1000).toISOString() }
  const units = (await t.app.audit.list({ action: 'unit.created', limit: 10 })).items
  for (const side of SIDES) target[side] = units.find((e) => e.subjectId === `unit-${side.toLowerCase()}`)!
  systemWide = (await t.app.audit.list({ action: 'user.created', actor: 'bootstrap' })).items[0]!
  expect(systemWide.jurisdictionId).toBeNull()

  for (const role of ['admin', 'operator', 'inspector', 'viewer'] as const) {
    const username = `${role}-a`
    const password = `${username}-password-123`
    await root('POST', '/api/v1/users', { username, displayName: username, password, role, jurisdictionId: 'district-a' })
    const { accessToken } = await loginAt(base, username, password)
    as[username as Who] = apiWithToken(base, () => accessToken)
  }
  for (const [who, role] of [['key-a', 'operator'], ['inspector-key-a', 'inspector']] as const) {
    const { key } = await root<{ key: string }>('POST', '/api/v1/api-keys', { name: who, role, jurisdictionId: 'district-a' })
    as[who] = apiWithToken(base, () => key)
  }
})
afterAll(async () => {
  await t?.dispose()
})

describe('the audit access matrix', () => {
  it('has a call for every row and a row for every call', () => {
    expect([...READS, ...UNTARGETED].map(([e]) => e).sort()).toEqual(Object.keys(ENDPOINTS).sort())
  })

  const cells = READS.flatMap(([endpoint, row]) =>
    WHO.flatMap((who, i) => SIDES.map((side, j) => [`${who} ${endpoint} on ${side}'s entry → ${row[i]![j]}`, who, endpoint, side, row[i]![j]!] as const))
  )
  it.each(cells)('%s', async (_label, who, endpoint, side, expected) => {
    check(expected, await ENDPOINTS[endpoint]!(as[who], side))
  })

  const untargeted = UNTARGETED.flatMap(([endpoint, row]) => WHO.map((who, i) => [`${who} ${endpoint} → ${row[i]}`, who, endpoint, row[i]!] as const))
  it.each(untargeted)('%s', async (_label, who, endpoint, expected) => {
    check(expected, await ENDPOINTS[endpoint]!(as[who], 'A'))
  })
})

describe('reading', () => {
  it('answers 401 without credentials', async () => {
    for (const path of ['/api/v1/audit', '/api/v1/audit/verify']) {
      expect((await fetch(`http://127.0.0.1:${t.httpPort}${path}`)).status).toBe(401)
    }
  })

  it('pages newest first with the total of the caller’s view', async () => {
    const all = (await as['inspector-a']<{ items: AuditEntry[]; total: number }>('GET', '/api/v1/audit?limit=1000')).body
    expect(all.items.every((e) => e.jurisdictionId !== null && ['district-a', 'street-a1'].includes(e.jurisdictionId))).toBe(true)
    const page = (await as['inspector-a']<{ items: AuditEntry[]; total: number }>('GET', '/api/v1/audit?limit=2&offset=1')).body
    expect(page.total).toBe(all.total)
    expect(page.items.map((e) => e.seq)).toEqual(all.items.slice(1, 3).map((e) => e.seq))
    expect(all.items.map((e) => e.seq)).toEqual([...all.items.map((e) => e.seq)].sort((a, b) => b - a))
    const past = (await as['inspector-a']<{ items: AuditEntry[]; total: number }>('GET', `/api/v1/audit?offset=${all.total + 5}`)).body
    expect(past).toEqual({ items: [], total: all.total })
  })

  it('validates the query and the anchor', async () => {
    const bad = await t.api<{ code: string; field?: string }>('GET', '/api/v1/audit?from=yesterday')
    expect(bad.status).toBe(400)
    expect(bad.body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'from' })
    const half = await t.api<{ code: string; field?: string }>('GET', '/api/v1/audit/verify?anchorSeq=1')
    expect(half.status).toBe(400)
    expect(half.body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'anchorHash' })
  })
})
