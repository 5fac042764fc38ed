/**
 * Who may see and manage webhooks and their dead letters: every webhook route driven as every kind of principal
 * against a record of the caller's district (A) and one of the neighbouring district (B), the expected status of each
 * cell written out (the policy as a person reads it, not derived from `can()`). The house rules of
 * test/access-matrix.test.ts hold: outside the caller's subtree reads as missing (404, or 400 "does not exist" for a
 * jurisdiction named in a body) for every role, checked before the role; inside it, a role other than admin gets 403;
 * a list is the caller's subtree only. Plus: a webhook bound to no jurisdiction belongs to whole-system administrators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'

type Side = 'A' | 'B'
const WHO = ['root', 'admin-a', 'key-admin-a', 'operator-a', 'inspector-a', 'viewer-a'] as const
type Who = (typeof WHO)[number]
type Expect = number | 'listed' | 'hidden'
const L = 'listed'
const H = 'hidden'
type Row = [Expect, Expect][]

const CITY = 'mw-city'
const DISTRICT: Record<Side, string> = { A: 'mw-district-a', B: 'mw-district-b' }
const STREET_A = 'mw-street-a1'

// prettier-ignore
const CELLS: [string, Row][] = [
  //                                        root        admin-a      key-admin-a  operator-a   inspector-a  viewer-a
  ['GET /webhooks',                        [[L, L],     [L, H],      [L, H],      [403, 403],  [403, 403],  [403, 403]]],
  ['GET /webhooks/{id}',                   [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['PATCH /webhooks/{id}',                 [[200, 200], [200, 404],  [200, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['DELETE /webhooks/{id}',                [[204, 204], [204, 404],  [204, 404],  [403, 404],  [403, 404],  [403, 404]]],
  ['POST /webhooks',                       [[201, 201], [201, 400],  [201, 400],  [403, 403],  [403, 403],  [403, 403]]],
  ['GET /webhooks/dead-letters',           [[L, L],     [L, H],      [L, H],      [403, 403],  [403, 403],  [403, 403]]],
  ['POST /webhooks/dead-letters/{id}/retry', [[202, 202], [202, 404], [202, 404],  [403, 404],  [403, 404],  [403, 404]]]
]

let t: TestApp
const as = {} as Record<Who, ApiCall>
let n = 0

beforeAll(async () => {
  t = await startTestApp()
  const base = `http://127.0.0.1:${t.httpPort}`
  as.root = t.api
  await t.api('POST', '/api/v1/jurisdictions', { id: CITY, name: 'City', level: 'city' })
  for (const side of ['A', 'B'] as const) await t.api('POST', '/api/v1/jurisdictions', { id: DISTRICT[side], parentId: CITY, name: `District ${side}`, level: 'district' })
  await t.api('POST', '/api/v1/jurisdictions', { id: STREET_A, parentId: DISTRICT.A, name: 'Street A1', level: 'street' })
  for (const who of ['admin-a', 'operator-a', 'inspector-a', 'viewer-a'] as const) {
    const password = `${who}-password`
    const r = await t.api('POST', '/api/v1/users', { username: who, displayName: who, password, role: who.split('-')[0], jurisdictionId: DISTRICT.A })
    if (r.status !== 201) throw new Error(`${who}: ${r.status} ${JSON.stringify(r.body)}`)
    const { accessToken } = await loginAt(base, who, password)
    as[who] = apiWithToken(base, () => accessToken)
  }
  const key = await t.api<{ key: string }>('POST', '/api/v1/api-keys', { name: 'key-admin-a', role: 'admin', jurisdictionId: DISTRICT.A })
  as['key-admin-a'] = apiWithToken(base, () => key.body.key)
})
afterAll(async () => {
  await t?.dispose()
})

/** A webhook of side A (bound to a street below the district: the subtree reaches down) or B, made by root. */
async function webhook(side: Side): Promise<string> {
  const r = await t.api<{ id: string }>('POST', '/api/v1/webhooks', {
    name: `hook ${++n}`,
    url: 'http://127.0.0.1:9/hook',
    jurisdictionId: side === 'A' ? STREET_A : DISTRICT.B,
    classes: ['fire']
  })
  if (r.status !== 201) throw new Error(`webhook: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.id
}

async function deadLetter(side: Side): Promise<string> {
  const webhookId = await webhook(side)
  const deliveryId = `matrix-${++n}`
  await t.app.notifications.repo.deadLetter({ webhookId, deliveryId, body: '{}', attempts: 3, lastStatus: 500, lastError: 'answered 500' })
  const { items } = await t.app.notifications.repo.deadLetters(null, { webhookId, limit: 1, offset: 0 })
  return items[0]!.id
}

/** Run one cell; returns the status, or listed / hidden for a list. */
async function cell(route: string, who: Who, side: Side): Promise<Expect> {
  const api = as[who]
  switch (route) {
    case 'GET /webhooks': {
      const id = await webhook(side)
      const r = await api<{ items: { id: string }[] }>('GET', '/api/v1/webhooks?limit=1000')
      return r.status !== 200 ? r.status : r.body.items.some((w) => w.id === id) ? L : H
    }
    case 'GET /webhooks/dead-letters': {
      const id = await deadLetter(side)
      const r = await api<{ items: { id: string }[] }>('GET', '/api/v1/webhooks/dead-letters?limit=1000')
      return r.status !== 200 ? r.status : r.body.items.some((d) => d.id === id) ? L : H
    }
    case 'GET /webhooks/{id}':
      return (await api('GET', `/api/v1/webhooks/${await webhook(side)}`)).status
    case 'PATCH /webhooks/{id}':
      return (await api('PATCH', `/api/v1/webhooks/${await webhook(side)}`, { enabled: false })).status
    case 'DELETE /webhooks/{id}':
      return (await api('DELETE', `/api/v1/webhooks/${await webhook(side)}`)).status
    case 'POST /webhooks':
      return (await api('POST', '/api/v1/webhooks', { name: 'new', url: 'https://example.test/h', jurisdictionId: DISTRICT[side], classes: ['trouble'] })).status
    case 'POST /webhooks/dead-letters/{id}/retry':
      return (await api('POST', `/api/v1/webhooks/dead-letters/${await deadLetter(side)}/retry`)).status
  }
  throw new Error(`no cell for ${route}`)
}

describe('webhooks × roles × jurisdictions', () => {
  for (const [route, row] of CELLS) {
    it(route, async () => {
      const got: Record<string, Expect> = {}
      const want: Record<string, Expect> = {}
      for (const [i, who] of WHO.entries()) {
        for (const [j, side] of (['A', 'B'] as const).entries()) {
          got[`${who} → ${side}`] = await cell(route, who, side)
          want[`${who} → ${side}`] = row[i]![j]!
        }
      }
      expect(got).toEqual(want)
    })
  }
})

describe('bindings', () => {
  it('keeps a webhook of every jurisdiction to whole-system administrators', async () => {
    const all = await t.api<{ id: string }>('POST', '/api/v1/webhooks', { name: 'city-wide', url: 'https://example.test/all', jurisdictionId: null, classes: ['fire'] })
    expect(all.status).toBe(201)
    expect((await as['admin-a']('GET', `/api/v1/webhooks/${all.body.id}`)).status).toBe(404)
    const listed = await as['admin-a']<{ items: { id: string }[] }>('GET', '/api/v1/webhooks?limit=1000')
    expect(listed.body.items.some((w) => w.id === all.body.id)).toBe(false)
    const r = await as['admin-a']<{ code: string }>('POST', '/api/v1/webhooks', { name: 'mine', url: 'https://example.test/a', jurisdictionId: null, classes: ['fire'] })
    expect(r).toMatchObject({ status: 403, body: { code: 'FW_ERR_FORBIDDEN' } })
  })

  it('does not let an administrator of A move a webhook to B', async () => {
    const id = await webhook('A')
    const r = await as['admin-a']<{ field: string }>('PATCH', `/api/v1/webhooks/${id}`, { jurisdictionId: DISTRICT.B })
    expect(r).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'jurisdictionId' } })
    expect((await t.api<{ jurisdictionId: string }>('GET', `/api/v1/webhooks/${id}`)).body.jurisdictionId).toBe(STREET_A)
  })

  it('answers 404 for a webhook or dead letter that does not exist, before the role', async () => {
    for (const who of ['admin-a', 'operator-a'] as const) {
      expect((await as[who]('GET', '/api/v1/webhooks/987654321')).status).toBe(404)
      expect((await as[who]('GET', '/api/v1/webhooks/abc')).status).toBe(404)
      expect((await as[who]('POST', '/api/v1/webhooks/dead-letters/987654321/retry')).status).toBe(404)
    }
  })

  it('requires credentials', async () => {
    expect((await fetch(`http://127.0.0.1:${t.httpPort}/api/v1/webhooks`)).status).toBe(401)
  })
})
