/**
 * Credit records exactly as the policy states (rules/followup/policy.yaml `credit`, here with its shipped numbers):
 * each rule that adds an entry, the dishonest threshold and list, and credit repair after a verified rectification
 * and a clean period, with the history kept. The repair sweep is called with a later "now" instead of waiting 30 days.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rmSync } from 'node:fs'
import pg, { type PoolClient } from 'pg'
import path from 'node:path'
import { startTestApp, type TestApp } from './helpers/env.js'
import { createPlace, createUnitIn, createUser, policyDoc, writePolicy, type Place } from './helpers/followup.js'
import type { Case, CreditEntry, CreditStandingReply } from '../schemas/cases.js'
import { creditStanding } from '../src/followup/credit.js'
import { CreditService } from '../src/followup/credit-service.js'

type UnitCredit = CreditStandingReply & { entries: CreditEntry[] }
const DAY = 86_400_000
const policyFile = writePolicy(policyDoc())
let t: TestApp
let place: Place

beforeAll(async () => {
  t = await startTestApp(undefined, { FOLLOWUP_FILE: policyFile })
  place = await createPlace(t.api)
  await createUser(t.api, 'inspector', place.district)
})
afterAll(async () => {
  await t?.dispose()
  rmSync(path.dirname(policyFile), { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const open = async (unitId: string, severity: 'major' | 'general', deadlineMs = 3_600_000) => {
  const r = await t.api<Case>('POST', '/api/v1/cases', { unitId, severity, title: `${severity} hazard`, deadline: new Date(Date.now() + deadlineMs).toISOString() })
  if (r.status !== 201) throw new Error(`case: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}
const step = (id: string, s: string, body: unknown = {}) => t.api<Case>('POST', `/api/v1/cases/${id}/${s}`, body)
const credit = async (unitId: string) => (await t.api<UnitCredit>('GET', `/api/v1/units/${unitId}/credit`)).body
/** Open a case that passes its deadline (1 s), then run the sweep that catches deadlines. */
async function overdueCase(unitId: string, severity: 'major' | 'general'): Promise<Case> {
  const k = await open(unitId, severity, 1000)
  await sleep(1100)
  await t.app.followUp.cases.markOverdue(k.id)
  return k
}

describe('entries', () => {
  it('an overdue major-hazard case adds 10 points once, which lists the unit as dishonest', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await overdueCase(unitId, 'major')
    // The timer firing again (a retry, a second instance) adds nothing.
    expect(await t.app.followUp.cases.markOverdue(k.id)).toBeNull()
    const c = await credit(unitId)
    expect(c).toMatchObject({ dishonest: true, points: 10, activeEntries: 1, threshold: 10 })
    expect(c.entries).toMatchObject([{ kind: 'overdue_major', points: 10, caseId: k.id, repairedAt: null }])
    expect(c.reasons[0]).toMatch(/major hazard not rectified by/)
    const listed = await t.api<{ items: CreditStandingReply[] }>('GET', '/api/v1/credit?dishonest=true')
    expect(listed.body.items.find((s) => s.unitId === unitId)).toMatchObject({ dishonest: true, points: 10 })
    // The shared reader every other module uses agrees.
    expect((await creditStanding(t.app.followUp.cases.repo.pool, [unitId])).get(unitId)).toEqual({ dishonest: true, activeEntries: 1, points: 10 })
  })

  it('a credit step waiting for a row does not hold the audit trail: no deadlock with an action that locked the unit first', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await open(unitId, 'major', 1000)
    await sleep(1100)
    // Another action (a registry change of the unit) locks the unit's row, then records its entry last, as audit-log.ts
    // asks. The overdue step's credit entry needs a key-share lock on that row: it must wait without holding the trail.
    const other = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
    await other.connect()
    try {
      await other.query('BEGIN')
      await other.query('SELECT 1 FROM units WHERE id = $1 FOR UPDATE', [unitId])
      const overdue = t.app.followUp.cases.markOverdue(k.id)
      const blocked = async () =>
        (await other.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`
        )).rows[0]!.n > 0
      for (let i = 0; i < 100 && !(await blocked()); i++) await sleep(50)
      expect(await blocked()).toBe(true)
      await t.app.audit.record({ actor: 'test', action: 'unit.changed', subjectKind: 'unit', subjectId: unitId, jurisdictionId: place.district }, other as unknown as PoolClient)
      await other.query('COMMIT')
      expect(await overdue).toMatchObject({ id: k.id, status: 'overdue' })
    } finally {
      await other.end()
    }
    // The case step's entry comes before its credit entry, both after the other action's.
    const { rows } = await t.app.followUp.cases.repo.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE seq >= (SELECT max(seq) FROM audit_log WHERE action = 'unit.changed' AND subject_id = $1) ORDER BY seq`,
      [unitId]
    )
    expect(rows.map((r) => r.action)).toEqual(['unit.changed', 'case.overdue', 'credit.entry_added'])
    expect((await credit(unitId)).entries).toMatchObject([{ kind: 'overdue_major', caseId: k.id }])
    expect((await t.app.audit.verify()).ok).toBe(true)
  })

  it('a rectification submitted after the deadline, before the overdue timer ran, still makes the case overdue first', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await open(unitId, 'major', 1000)
    await sleep(1100)
    // No timer has run (a worker down or behind): the unit submits late, the inspector verifies at once.
    expect((await step(k.id, 'submit', { comment: 'fixed, late' })).body).toMatchObject({ status: 'rectification_submitted', overdueAt: expect.any(String) })
    expect((await step(k.id, 'verify')).body).toMatchObject({ status: 'verified' })
    const d = await t.api<{ transitions: { action: string }[] }>('GET', `/api/v1/cases/${k.id}`)
    expect(d.body.transitions.map((x) => x.action)).toEqual(['opened', 'assigned', 'overdue', 'submitted', 'verified'])
    expect((await credit(unitId)).entries).toMatchObject([{ kind: 'overdue_major', points: 10, caseId: k.id }])
    // The timer firing later changes nothing more.
    expect(await t.app.followUp.cases.markOverdue(k.id)).toBeNull()
  })

  it('an overdue general case adds nothing', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await overdueCase(unitId, 'general')
    expect((await t.app.followUp.cases.repo.get(k.id))?.status).toBe('overdue')
    expect((await credit(unitId)).entries).toEqual([])
    expect((await creditStanding(t.app.followUp.cases.repo.pool, [unitId])).has(unitId)).toBe(false)
  })

  it('each refused rectification adds 4 points; the third reaches the threshold', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await open(unitId, 'general')
    for (let i = 1; i <= 3; i++) {
      expect((await step(k.id, 'submit')).body.status).toBe('rectification_submitted')
      const r = await step(k.id, 'reject', { comment: `valve still closed (${i})` })
      expect(r.body.status).toBe('assigned')
      const c = await credit(unitId)
      expect(c.points).toBe(4 * i)
      expect(c.dishonest).toBe(i === 3)
    }
    expect((await credit(unitId)).entries.every((e) => e.kind === 'refused_rectification' && e.caseId === k.id)).toBe(true)
    const dishonest = await t.api<{ items: CreditStandingReply[] }>('GET', '/api/v1/credit?dishonest=true')
    expect(dishonest.body.items.find((s) => s.unitId === unitId)?.reasons).toHaveLength(3)
    const honest = await t.api<{ items: CreditStandingReply[] }>('GET', '/api/v1/credit?dishonest=false')
    expect(honest.body.items.some((s) => s.unitId === unitId)).toBe(false)
  })

  it('a third case within 90 days adds a repeated-violations entry, once per window', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    await open(unitId, 'general')
    await open(unitId, 'general')
    expect((await credit(unitId)).entries).toEqual([])
    const third = await open(unitId, 'general')
    expect((await credit(unitId)).entries).toMatchObject([{ kind: 'repeated_violations', points: 4, caseId: third.id }])
    expect((await credit(unitId)).reasons[0]).toMatch(/3 cases within 90 d/)
    await open(unitId, 'general')
    expect((await credit(unitId)).entries).toHaveLength(1)
  })

  it('refuses a reject or verify that the status does not allow', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await open(unitId, 'general')
    const r = await t.api<{ code: string }>('POST', `/api/v1/cases/${k.id}/reject`, {})
    expect(r).toMatchObject({ status: 409, body: { code: 'FW_ERR_CASE_STATE' } })
    expect((await step(k.id, 'verify')).status).toBe(409)
    expect((await credit(unitId)).entries).toEqual([])
  })
})

describe('repair', () => {
  const REPAIR = 30 * DAY
  const repair = (at: number) => t.app.followUp.credit.repair(new Date(at))

  it('repairs the entries of a verified case after 30 days without a new entry, keeping the history', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const k = await overdueCase(unitId, 'major')
    await step(k.id, 'submit')
    const verified = await step(k.id, 'verify')
    expect(verified.body.status).toBe('verified')
    const verifiedAt = Date.parse(verified.body.verifiedAt!)
    // A day short of the clean period: nothing.
    expect((await repair(verifiedAt + REPAIR - DAY)).filter((e) => e.unitId === unitId)).toEqual([])
    expect((await credit(unitId)).dishonest).toBe(true)
    const repaired = (await repair(verifiedAt + REPAIR + 1000)).filter((e) => e.unitId === unitId)
    expect(repaired).toMatchObject([{ kind: 'overdue_major', caseId: k.id }])
    expect(repaired[0]!.repairReason).toMatch(new RegExp(`case ${k.id} verified .*no new entry for 30 d`))
    const c = await credit(unitId)
    expect(c).toMatchObject({ dishonest: false, points: 0, activeEntries: 0, reasons: [] })
    // History kept: the entry is still there, marked repaired.
    expect(c.entries).toHaveLength(1)
    expect(c.entries[0]!.repairedAt).not.toBeNull()
    // Repaired once: a later sweep finds nothing more.
    expect((await repair(verifiedAt + 2 * REPAIR)).filter((e) => e.unitId === unitId)).toEqual([])
  })

  it('never repairs the entries of a case that was not verified', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    await overdueCase(unitId, 'major')
    expect((await repair(Date.now() + 10 * REPAIR)).filter((e) => e.unitId === unitId)).toEqual([])
    expect((await credit(unitId)).dishonest).toBe(true)
  })

  it('a new entry of the unit restarts the clean period', async () => {
    const unitId = await createUnitIn(t.api, place.district)
    const first = await open(unitId, 'general')
    await step(first.id, 'submit')
    await step(first.id, 'reject')
    await step(first.id, 'submit')
    const verifiedAt = Date.parse((await step(first.id, 'verify')).body.verifiedAt!)
    // Another case of the unit gets an entry afterwards.
    const second = await open(unitId, 'general')
    await step(second.id, 'submit')
    const later = await step(second.id, 'reject')
    expect(later.status).toBe(200)
    const entries = (await credit(unitId)).entries
    const newest = Math.max(...entries.map((e) => Date.parse(e.createdAt)))
    expect(newest).toBeGreaterThanOrEqual(verifiedAt)
    // 30 days after the verification but not after the newest entry: nothing repaired.
    expect((await repair(newest + REPAIR - 1000)).filter((e) => e.unitId === unitId)).toEqual([])
    // 30 days after the newest: the verified case's entry is repaired, the unverified case's entry stays.
    const repaired = (await repair(newest + REPAIR + 1000)).filter((e) => e.unitId === unitId)
    expect(repaired.map((e) => e.caseId)).toEqual([first.id])
    expect((await credit(unitId)).entries.filter((e) => e.repairedAt === null).map((e) => e.caseId)).toEqual([second.id])
  })
})

describe('threshold', () => {
  it('a changed dishonest threshold in the policy file is applied at start and recorded in the audit trail', async () => {
    const policy = t.app.followUp.cases.policy
    const withThreshold = (dishonestPoints: number) => new CreditService(t.app.followUp.cases.repo.pool, { ...policy, credit: { ...policy.credit, dishonestPoints } }, t.app.audit)
    await withThreshold(12).syncThreshold()
    await withThreshold(12).syncThreshold() // unchanged: nothing more recorded
    await withThreshold(10).syncThreshold()
    const { items } = await t.app.audit.list({ action: 'credit.threshold_changed', limit: 10, offset: 0 })
    expect(items.map((e) => [e.actor, e.jurisdictionId, e.detail])).toEqual([
      ['system', null, { from: 12, to: 10 }],
      ['system', null, { from: 10, to: 12 }]
    ])
    expect((await t.app.followUp.cases.repo.pool.query('SELECT dishonest_points FROM credit_policy')).rows[0]).toEqual({ dishonest_points: 10 })
  })
})
