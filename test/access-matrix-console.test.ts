/**
 * What the console adds to the API: `GET /api/v1/risk` (units ranked by risk) in the access matrix of
 * test/access-matrix.test.ts — every kind of principal bound to district A, against a unit in A and one in the
 * neighbouring district B — and what the ranking holds. The console's own files are public (no data in them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, loginAt, provisionAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { RankedUnit } from '../schemas/risk-ranking.js'
import type { UnitRisk } from '../schemas/alerts.js'

type Side = 'A' | 'B'
const WHO = ['root', 'admin-a', 'operator-a', 'inspector-a', 'viewer-a', 'key-a'] as const
type Who = (typeof WHO)[number]
const CITY = 'rank-city'
const DISTRICT: Record<Side, string> = { A: 'rank-district-a', B: 'rank-district-b' }
/** A's units: one with an open fire alarm, one quiet; B's: one with a trouble alert. */
const UNIT = { fireA: 'rank-unit-fire-a', quietA: 'rank-unit-quiet-a', B: 'rank-unit-b' }

/** `listed`: 200 with the unit in the list; `hidden`: 200 without it; a number: that status. */
type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
type Row = Record<Who, [unitInA: Expect, unitInB: Expect]>
const EVERYONE_A = (a: Expect, b: Expect): Omit<Row, 'root'> => ({ 'admin-a': [a, b], 'operator-a': [a, b], 'inspector-a': [a, b], 'viewer-a': [a, b], 'key-a': [a, b] })

// prettier-ignore
const CELLS: [path: string, row: Row][] = [
  ['/api/v1/risk',                                   { root: [L, L], ...EVERYONE_A(L, H) }],
  [`/api/v1/risk?jurisdictionId=${DISTRICT.A}`,      { root: [L, H], ...EVERYONE_A(L, H) }],
  [`/api/v1/risk?jurisdictionId=${DISTRICT.B}`,      { root: [H, L], ...EVERYONE_A(H, H) }]
]

let t: TestApp
const as = {} as Record<Who, ApiCall>

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

const raise = (unitId: string, cls: 'fire' | 'trouble') =>
  t.app.alerts.raise({
    unitId,
    deviceId: '',
    point: '',
    ruleId: `rank-${cls}`,
    class: cls,
    troubleType: cls === 'trouble' ? 'fault' : null,
    severity: cls === 'fire' ? 'critical' : 'minor',
    title: `ranking test ${cls}`,
    detail: {},
    at: new Date()
  })

beforeAll(async () => {
  t = await startTestApp()
  const base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api
  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: 'Rank City', level: 'city' })
  for (const side of ['A', 'B'] as const) await root('POST', '/api/v1/jurisdictions', { id: DISTRICT[side], parentId: CITY, name: `District ${side}`, level: 'district' })
  for (const [id, jurisdictionId, category] of [
    [UNIT.fireA, DISTRICT.A, 'general'],
    [UNIT.quietA, DISTRICT.A, 'high_risk'],
    [UNIT.B, DISTRICT.B, 'key']
  ] as const) {
    await root('POST', '/api/v1/units', { id, jurisdictionId, name: id, address: '1 Rank Road', category, contactName: 'Duty Manager', contactPhone: '0571-0000000' })
  }
  // Devices start offline until they connect.
  await provisionAt(t.api, 'smoke_detector', UNIT.fireA)
  await provisionAt(t.api, 'smoke_detector', UNIT.fireA)
  await provisionAt(t.api, 'smoke_detector', UNIT.B)
  await raise(UNIT.fireA, 'fire')
  await raise(UNIT.B, 'trouble')

  for (const role of ['admin', 'operator', 'inspector', 'viewer'] as const) {
    const username = `${role}-a`
    await root('POST', '/api/v1/users', { username, displayName: username, password: `${username}-password-1`, role, jurisdictionId: DISTRICT.A })
    const token = (await loginAt(base, username, `${username}-password-1`)).accessToken
    as[username as Who] = apiWithToken(base, () => token)
  }
  const key = (await root<{ key: string }>('POST', '/api/v1/api-keys', { name: 'key-a', role: 'operator', jurisdictionId: DISTRICT.A })).key
  as['key-a'] = apiWithToken(base, () => key)
})
afterAll(async () => {
  await t?.dispose()
})

describe('GET /api/v1/risk in the access matrix', () => {
  for (const [path, row] of CELLS) {
    for (const who of WHO) {
      it(`${who} ${path}`, async () => {
        const r = await as[who]<{ items: RankedUnit[]; total: number }>('GET', path)
        const [inA, inB] = row[who]
        const got = (unitId: string): Expect => (r.status !== 200 ? r.status : r.body.items.some((u) => u.unitId === unitId) ? L : H)
        expect([got(UNIT.fireA), got(UNIT.B)]).toEqual([inA, inB])
        expect(r.body.total).toBe(r.body.items.length)
      })
    }
  }

  it('refuses a caller without credentials and a bad query', async () => {
    expect((await fetch(`http://127.0.0.1:${t.httpPort}/api/v1/risk`)).status).toBe(401)
    expect((await as['viewer-a']('GET', '/api/v1/risk?limit=0')).status).toBe(400)
    expect((await as['viewer-a']('GET', '/api/v1/risk?jurisdictionId=a/b')).status).toBe(400)
  })

  it('serves the console without credentials: it holds no data', async () => {
    const res = await fetch(`http://127.0.0.1:${t.httpPort}/console/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
    // The ranking is in the OpenAPI description; the console's files are not API routes.
    const paths = Object.keys(((await (await fetch(`http://127.0.0.1:${t.httpPort}/docs/json`)).json()) as { paths: object }).paths)
    expect(paths).toContain('/api/v1/risk')
    expect(paths.filter((p) => p === '/' || p.startsWith('/console'))).toEqual([])
  })
})

describe('the ranking', () => {
  it('puts the highest score first, with open alerts and offline devices, the same score as GET /units/{id}/risk', async () => {
    const { items, total } = (await as['operator-a']<{ items: RankedUnit[]; total: number }>('GET', '/api/v1/risk')).body
    expect(total).toBe(2)
    expect(items.map((u) => u.unitId)).toEqual([UNIT.fireA, UNIT.quietA])
    expect(items[0]).toMatchObject({ name: UNIT.fireA, category: 'general', jurisdictionId: DISTRICT.A, openAlerts: 1, openFireAlerts: 1, devices: 2, offlineDevices: 2 })
    expect(items[1]).toMatchObject({ openAlerts: 0, openFireAlerts: 0, devices: 0, offlineDevices: 0 })
    for (const u of items) {
      const single = (await as['operator-a']<UnitRisk>('GET', `/api/v1/units/${u.unitId}/risk`)).body
      expect(u.score).toBe(single.score)
      expect(u.level).toBe(single.level)
    }
    expect(items[0]!.score!).toBeGreaterThan(items[1]!.score!)
  })

  it('pages by cursor, and still by offset', async () => {
    type Page = { items: RankedUnit[]; total: number; nextCursor: string | null }
    const whole = (await as.root<Page>('GET', '/api/v1/risk')).body
    expect(whole.nextCursor).toBeNull()
    const walked: string[] = []
    let cursor: string | null = null
    do {
      const page: Page = (await as.root<Page>('GET', `/api/v1/risk?limit=1${cursor ? `&cursor=${cursor}` : ''}`)).body
      expect(page.total).toBe(3)
      expect(page.items).toHaveLength(1)
      walked.push(page.items[0]!.unitId)
      cursor = page.nextCursor
    } while (cursor)
    expect(walked).toEqual(whole.items.map((u) => u.unitId))
    const page = (await as.root<Page>('GET', '/api/v1/risk?limit=1&offset=1')).body
    expect(page.total).toBe(3)
    expect(page.items.map((u) => u.unitId)).toEqual([walked[1]])
  })

  it('names the field of a bad page request', async () => {
    const next = (await as.root<{ nextCursor: string }>('GET', '/api/v1/risk?limit=1')).body.nextCursor
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['cursor=%%%', 'cursor'],
      [`cursor=${Buffer.from('[101, "x"]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('[5, "a/b"]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('{"score": 5}').toString('base64url')}`, 'cursor'],
      [`cursor=${next}&offset=1`, 'offset']
    ]) {
      const r = await as['viewer-a']('GET', `/api/v1/risk?${q}`)
      expect([q, r.status, r.body]).toEqual([q, 400, expect.objectContaining({ code: 'FW_ERR_VALIDATION', field })])
    }
  })
})
