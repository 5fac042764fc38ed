/**
 * Random inspection draws through the API against PostgreSQL: weights from the stored risk levels, the same seed giving
 * the same draw on two app instances, conflicts excluding an inspector, a target without eligible inspectors reported,
 * replay, publication and the public list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg, { type PoolClient } from 'pg'
import { apiWithToken, loginAt, startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import type { Draw, DrawCandidate, PublicDraw, DrawReplay } from '../schemas/inspections.js'
import { AUDIT_LOCK } from '../src/audit/audit-log.js'

let t: TestApp
let db: pg.Client
let base: string
const CITY = 'city-d'
const A = 'district-da'
const C = 'district-dc'
/** Units of A and their risk levels (null: never scored). */
const LEVELS: Record<string, string | null> = { 'unit-a1': 'high', 'unit-a2': 'low', 'unit-a3': null, 'unit-a4': 'critical', 'unit-a5': 'medium' }
const LONELY = 'unit-c1'
const users: Record<string, string> = {}
let inspector: ApiCall

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

const unit = (id: string, jurisdictionId: string) =>
  root('POST', '/api/v1/units', { id, jurisdictionId, name: `Name of ${id}`, address: `${id} Road`, category: 'key', contactName: 'Duty', contactPhone: '0571-0000000' })

async function user(username: string, role: string, jurisdictionId: string): Promise<string> {
  const u = await root<{ id: string }>('POST', '/api/v1/users', { username, displayName: `Inspector ${username}`, password: `${username}-password`, role, jurisdictionId })
  users[username] = u.id
  return u.id
}

beforeAll(async () => {
  t = await startTestApp()
  base = `http://127.0.0.1:${t.httpPort}`
  db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
  await db.connect()
  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: 'City D', level: 'city' })
  for (const j of [A, C]) await root('POST', '/api/v1/jurisdictions', { id: j, parentId: CITY, name: j, level: 'district' })
  for (const [id, level] of Object.entries(LEVELS)) {
    await unit(id, A)
    if (level) {
      await db.query(`INSERT INTO unit_risk (unit_id, score, level, factors, computed_at) VALUES ($1, 50, $2, '[]', now())`, [id, level])
    }
  }
  await unit(LONELY, C)
  // Credit records (src/followup/credit.ts): a2 has an active entry, a5 reaches the dishonest threshold in force.
  const { rows } = await db.query<{ dishonest_points: number }>('SELECT dishonest_points FROM credit_policy')
  await db.query(`INSERT INTO credit_entries (unit_id, kind, points, reason) VALUES ('unit-a2', 'repeated_violations', 1, 'seeded')`)
  await db.query(`INSERT INTO credit_entries (unit_id, kind, points, reason) VALUES ('unit-a5', 'overdue_major', $1, 'seeded')`, [rows[0]!.dishonest_points])
  for (const name of ['insp-a1', 'insp-a2', 'insp-a3']) await user(name, 'inspector', A)
  await user('insp-city', 'inspector', CITY)
  await user('viewer-a', 'viewer', A)
  const { accessToken } = await loginAt(base, 'insp-a1', 'insp-a1-password')
  inspector = apiWithToken(base, () => accessToken)
})
afterAll(async () => {
  await db?.end()
  await t?.dispose()
})

const draw = async (api: ApiCall, body: Record<string, unknown>) => {
  const r = await api<Draw>('POST', '/api/v1/inspections/draws', body)
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  return r.body
}
const picks = (d: Draw) => d.targets.map((x) => [x.unitId, x.inspectors])
/** Every candidate of a draw, page by page (two at a time, so these small draws take several pages). */
async function candidatesOf(api: ApiCall, id: string): Promise<DrawCandidate[]> {
  const all: DrawCandidate[] = []
  let cursor: string | null = null
  do {
    const r: { status: number; body: { items: DrawCandidate[]; total: number; nextCursor: string | null } } = await api(
      'GET',
      `/api/v1/inspections/draws/${id}/candidates?limit=2${cursor ? `&cursor=${cursor}` : ''}`
    )
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    all.push(...r.body.items)
    cursor = r.body.nextCursor
  } while (cursor)
  return all
}

describe('inspection draws', () => {
  it('weighs candidates by their stored risk level (none as low) and credit record', async () => {
    const d = await draw(inspector, { jurisdictionId: A, targets: 2, seed: 'weights' })
    expect(d.candidateCount).toBe(5)
    expect(d).not.toHaveProperty('candidates')
    expect((await candidatesOf(inspector, d.id)).map((c) => [c.unitId, c.riskLevel, c.dishonest, c.activeEntries, c.weight])).toEqual([
      ['unit-a1', 'high', false, 0, 4],
      ['unit-a2', 'low', false, 1, 1.5],
      ['unit-a3', null, false, 0, 1],
      ['unit-a4', 'critical', false, 0, 8],
      ['unit-a5', 'medium', true, 1, 4]
    ])
    expect(d.weights).toEqual({ risk: { low: 1, medium: 2, high: 4, critical: 8 }, credit: { dishonest: 2, activeEntries: 1.5, clean: 1 } })
    expect(d).toMatchObject({ seed: 'weights', seedGenerated: false, inspectorsPerTarget: 2, targetsRequested: 2, createdBy: 'insp-a1', publishedAt: null })
    expect(d.targets).toHaveLength(2)
    expect(new Set(d.targets.map((x) => x.unitId)).size).toBe(2)
    // Units of A: inspectors bound to A or to the city cover them.
    for (const x of d.targets) {
      expect(x.eligibleInspectors).toEqual([users['insp-a1'], users['insp-a2'], users['insp-a3'], users['insp-city']].sort())
      expect(x.inspectors).toHaveLength(2)
      expect(x.shortfall).toBe(0)
    }
  })

  it('gives the same draw for the same seed, on another app instance too', async () => {
    const first = await draw(t.api, { jurisdictionId: A, targets: 3, inspectorsPerTarget: 2, seed: 'district-da-2026-q1' })
    const other = await startTestApp(t.names)
    try {
      const second = await draw(other.api, { jurisdictionId: A, targets: 3, inspectorsPerTarget: 2, seed: 'district-da-2026-q1' })
      expect(second.id).not.toBe(first.id)
      expect(picks(second)).toEqual(picks(first))
      expect(await candidatesOf(other.api, second.id)).toEqual(await candidatesOf(t.api, first.id))
    } finally {
      await other.stop()
    }
    const different = await draw(t.api, { jurisdictionId: A, targets: 3, inspectorsPerTarget: 2, seed: 'district-da-2026-q1 (2)' })
    expect(picks(different)).not.toEqual(picks(first))
  })

  it('generates and publishes a seed when none is given', async () => {
    const d = await draw(t.api, { jurisdictionId: A, targets: 1 })
    expect(d.seed).toMatch(/^[0-9a-f]{32}$/)
    expect(d.seedGenerated).toBe(true)
    const replay = await t.api<DrawReplay>('GET', `/api/v1/inspections/draws/${d.id}/replay`)
    expect(replay.body.matches).toBe(true)
  })

  it('never draws an inspector with a conflict recorded against the unit', async () => {
    const r = await t.api('POST', '/api/v1/units/unit-a4/conflicts', { userId: users['insp-a2'], reason: 'brother-in-law is the fire-safety manager' })
    expect(r.status).toBe(201)
    expect((await t.api('POST', '/api/v1/units/unit-a4/conflicts', { userId: users['insp-a2'], reason: 'again' })).status).toBe(409)
    expect((await t.api('POST', '/api/v1/units/unit-a4/conflicts', { userId: users['viewer-a'], reason: 'not an inspector' })).body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'userId' })
    const listed = await t.api<{ items: { userId: string; createdBy: string }[] }>('GET', '/api/v1/units/unit-a4/conflicts')
    expect(listed.body.items).toEqual([expect.objectContaining({ userId: users['insp-a2'], createdBy: 'root' })])

    for (let i = 0; i < 10; i++) {
      const d = await draw(t.api, { jurisdictionId: A, targets: 5, inspectorsPerTarget: 3, seed: `conflict-${i}` })
      const a4 = d.targets.find((x) => x.unitId === 'unit-a4')!
      expect(a4.eligibleInspectors).not.toContain(users['insp-a2'])
      expect(a4.inspectors).not.toContain(users['insp-a2'])
      expect(a4.inspectors).toHaveLength(3)
    }
    expect((await t.api('DELETE', `/api/v1/units/unit-a4/conflicts/${users['insp-a2']}`)).status).toBe(204)
    const audit = await t.api<{ items: { action: string; detail: Record<string, unknown> }[] }>('GET', '/api/v1/audit?subjectKind=unit&subjectId=unit-a4')
    expect(audit.body.items.filter((e) => e.action.startsWith('conflict.')).map((e) => [e.action, e.detail.userId])).toEqual([
      ['conflict.removed', users['insp-a2']],
      ['conflict.recorded', users['insp-a2']]
    ])
    const after = await draw(t.api, { jurisdictionId: A, targets: 5, seed: 'conflict-lifted' })
    expect(after.targets.find((x) => x.unitId === 'unit-a4')!.eligibleInspectors).toContain(users['insp-a2'])
  })

  it('reports a target without an eligible inspector instead of dropping it', async () => {
    // C has no inspector of its own; the city's inspector covers it but has a conflict with its one unit.
    await root('POST', `/api/v1/units/${LONELY}/conflicts`, { userId: users['insp-city'], reason: 'former employee' })
    const d = await draw(t.api, { jurisdictionId: C, targets: 1, seed: 'lonely' })
    expect(d.targets).toEqual([expect.objectContaining({ rank: 1, unitId: LONELY, inspectors: [], eligibleInspectors: [], shortfall: 2 })])
    expect(d.shortfalls).toBe(1)
  })

  it('replays a stored draw to the same result, and notices a stored result that was changed', async () => {
    const d = await draw(t.api, { jurisdictionId: A, targets: 3, seed: 'replay-me' })
    const r = await t.api<DrawReplay>('GET', `/api/v1/inspections/draws/${d.id}/replay`)
    expect(r.body).toMatchObject({ matches: true, weightsMismatched: [] })
    expect(r.body.replayed).toEqual(d.targets.map((x) => ({ unitId: x.unitId, inspectors: x.inspectors })))
    // Someone swaps the first target's inspectors in the database.
    await db.query(`UPDATE inspection_draws SET targets = jsonb_set(targets, '{0,inspectors}', (targets->0->'inspectors') - 0 || (targets->0->'inspectors'->0)) WHERE id = $1`, [d.id])
    expect((await t.api<DrawReplay>('GET', `/api/v1/inspections/draws/${d.id}/replay`)).body.matches).toBe(false)
    // A weight changed after the fact shows too, even where the picks are unchanged.
    const w = await draw(t.api, { jurisdictionId: A, targets: 1, seed: 'weight-tamper' })
    await db.query(`UPDATE inspection_draw_candidates SET weight = 3 WHERE draw_id = $1 AND position = 1`, [w.id])
    const tampered = (await t.api<DrawReplay>('GET', `/api/v1/inspections/draws/${w.id}/replay`)).body
    expect(tampered).toMatchObject({ matches: false, weightsMismatched: [(await candidatesOf(t.api, w.id))[1]!.unitId] })
  })

  it('publishes once; the public list needs no credentials and names units and inspectors', async () => {
    const d = await draw(inspector, { jurisdictionId: A, targets: 2, seed: 'publish-me', note: '2026 Q1 district A' })
    const publicUrl = `${base}/api/v1/inspections/draws/${d.id}/public`
    expect((await fetch(publicUrl)).status).toBe(404)
    const p1 = await inspector<Draw>('POST', `/api/v1/inspections/draws/${d.id}/publish`)
    expect(p1.status).toBe(200)
    expect(p1.body.publishedBy).toBe('insp-a1')
    const p2 = await t.api<Draw>('POST', `/api/v1/inspections/draws/${d.id}/publish`)
    expect(p2.body.publishedAt).toBe(p1.body.publishedAt)
    expect(p2.body.publishedBy).toBe('insp-a1')

    const res = await fetch(publicUrl)
    expect(res.status).toBe(200)
    const pub = (await res.json()) as PublicDraw
    expect(pub).toMatchObject({ seed: 'publish-me', jurisdictionName: A, publishedAt: p1.body.publishedAt })
    expect(pub.candidates).toHaveLength(5)
    const displayName = (id: string) => `Inspector ${Object.keys(users).find((k) => users[k] === id)}`
    expect(pub.targets).toEqual(
      d.targets.map((x) => expect.objectContaining({ rank: x.rank, unitId: x.unitId, unitName: `Name of ${x.unitId}`, inspectors: x.inspectors.map(displayName) }))
    )
    const audit = await t.api<{ items: { action: string; actor: string; jurisdictionId: string; detail: Record<string, unknown> }[] }>(
      'GET',
      `/api/v1/audit?subjectKind=inspection_draw&subjectId=${d.id}`
    )
    expect(audit.body.items.map((e) => [e.action, e.actor, e.jurisdictionId])).toEqual([
      ['draw.published', 'insp-a1', A],
      ['draw.made', 'insp-a1', A]
    ])
    expect(audit.body.items[1]!.detail).toMatchObject({ seed: 'publish-me', targets: d.targets.map((x) => x.unitId) })
    const list = await t.api<{ items: { id: string; publishedAt: string | null; note: string | null }[] }>('GET', `/api/v1/inspections/draws?jurisdictionId=${A}`)
    const openapi = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, unknown> }
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/api/v1/inspections/draws/{id}/public', '/api/v1/reports/summary']))
    expect(list.body.items.find((x) => x.id === d.id)).toMatchObject({ publishedAt: p1.body.publishedAt, note: '2026 Q1 district A' })
  })

  it('refuses a jurisdiction that does not exist, and bodies out of range', async () => {
    expect((await t.api('POST', '/api/v1/inspections/draws', { jurisdictionId: 'nowhere', targets: 1 })).body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'jurisdictionId' })
    expect((await t.api('POST', '/api/v1/inspections/draws', { jurisdictionId: A, targets: 0 })).status).toBe(400)
    expect((await t.api('GET', '/api/v1/inspections/draws/999999')).status).toBe(404)
    expect((await t.api('GET', '/api/v1/inspections/draws/999999/candidates')).status).toBe(404)
    const d = await draw(t.api, { jurisdictionId: A, targets: 1, seed: 'bad-pages' })
    const page = (q: string) => t.api(`GET`, `/api/v1/inspections/draws/${d.id}/candidates?${q}`)
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      [`cursor=${Buffer.from('[-1]').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('["sc-u1", 3]').toString('base64url')}`, 'cursor'],
      ['cursor=', 'cursor']
    ]) {
      const r = await page(q!)
      expect([q, r.status, r.body]).toEqual([q, 400, expect.objectContaining({ code: 'FW_ERR_VALIDATION', field })])
    }
    // A cursor past the end is a valid place: an empty last page.
    expect((await page(`cursor=${Buffer.from('[99]').toString('base64url')}`)).body).toEqual({ items: [], total: 5, nextCursor: null })
    await root('POST', '/api/v1/jurisdictions', { id: 'district-empty', parentId: CITY, name: 'No units yet', level: 'district' })
    expect((await t.api('POST', '/api/v1/inspections/draws', { jurisdictionId: 'district-empty', targets: 1 })).body).toMatchObject({
      code: 'FW_ERR_VALIDATION',
      field: 'jurisdictionId',
      message: 'jurisdiction district-empty has no units to draw from'
    })
  })

  it('a draw that waits for the audit trail behind another action chains its entry after that one', async () => {
    // Another action's transaction holds the trail (its entry appended, not yet committed) while the draw reads its
    // inputs; the draw's entry must still read the head that action commits, not the one of its own earlier snapshot.
    const holder = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await t.app.audit.record({ actor: 'test', action: 'test.held', subjectKind: 'test', subjectId: 'held', jurisdictionId: null }, holder as unknown as PoolClient)
      const made = t.app.draws.make({ jurisdictionId: A, targets: 1, inspectorsPerTarget: 1, seed: 'behind-another' }, 'insp-a1')
      const waiting = async () =>
        (await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [AUDIT_LOCK]
        )).rows[0]!.n > 0
      for (let i = 0; i < 100 && !(await waiting()); i++) await new Promise((r) => setTimeout(r, 50))
      expect(await waiting()).toBe(true)
      await holder.query('COMMIT')
      const d = await made
      const { rows } = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE seq > (SELECT seq FROM audit_log WHERE action = 'test.held') ORDER BY seq`)
      expect(rows.map((r) => r.action)).toEqual(['draw.made'])
      expect((await db.query(`SELECT 1 FROM audit_log WHERE action = 'draw.made' AND subject_id = $1`, [d.id])).rowCount).toBe(1)
      expect((await t.app.audit.verify()).ok).toBe(true)
    } finally {
      await holder.end()
    }
  })
})
