/**
 * Cases opened by policy and by hand, and who gets them: the policy timers scheduled when an alert opens (explicit
 * job ids), what the timer re-checks when it fires, one open case per (unit, policy) with recurrences linked to it,
 * the risk-level policy, assignment to the nearest inspector with the fewest open cases, unassigned cases, and the
 * policy file's validation. Timers are fired by calling their handler (this app runs no job workers; the end-to-end
 * test runs them for real).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rmSync } from 'node:fs'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { startTestApp, testConfig, uniqueNames, type TestApp } from './helpers/env.js'
import { createPlace, createUnitIn, createUser, policyDoc, writePolicy } from './helpers/followup.js'
import type { Case, CaseTransition } from '../schemas/cases.js'
import type { RaiseInput } from '../src/alerts/alert-repository.js'
import { jobId } from '../src/rules/jobs.js'
import { parseFollowUpPolicy } from '../src/followup/policy.js'
import { buildApp } from '../src/app.js'
import { pino } from 'pino'

type Detail = Case & { transitions: CaseTransition[]; alerts: { id: string }[] }
const policyFile = writePolicy(
  policyDoc({
    policies: [
      { id: 'open_trouble', title: 'Trouble open a day', severity: 'general', when: { alertOpen: { classes: ['trouble', 'isolation'], unitCategories: ['high_risk'], forS: 86400 } } },
      { id: 'risk_high', title: 'Risk high', severity: 'major', deadlineS: 7200, when: { riskLevel: { atLeast: 'high' } } }
    ]
  })
)
let t: TestApp
let seq = 0

beforeAll(async () => {
  t = await startTestApp(undefined, { FOLLOWUP_FILE: policyFile })
})
afterAll(async () => {
  await t?.dispose()
  rmSync(path.dirname(policyFile), { recursive: true, force: true })
})

const raise = async (unitId: string, over: Partial<RaiseInput> = {}) =>
  (
    await t.app.alerts.raise({ unitId, deviceId: '', point: '', ruleId: `fault_${++seq}`, class: 'trouble', troubleType: 'fault', severity: 'minor', title: 'panel fault', detail: {}, at: new Date(), ...over })
  ).alert
const casesOf = async (unitId: string) => (await t.api<{ items: Case[] }>('GET', `/api/v1/cases?unitId=${unitId}`)).body.items
const fire = (alertId: string) => t.app.followUp.triggers.onTimer('open_trouble', alertId)

describe('cases opened by an alert left open', () => {
  it('schedules a delayed job per (policy, alert) with an explicit id when the alert opens', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const alert = await raise(unitId)
    const job = await t.app.jobs.getJob('timers', jobId('case-trigger', 'open_trouble', alert.id))
    expect(await job?.getState()).toBe('delayed')
    expect(job!.opts.delay).toBeGreaterThan(86_390_000)
    expect(job!.data).toEqual({ policy: 'open_trouble', alertId: alert.id })
    // Resolved: the timer is dropped.
    await t.app.alerts.resolve(alert.id, 'op', 'device_fault', 'replaced')
    expect(await t.app.jobs.getJob('timers', jobId('case-trigger', 'open_trouble', alert.id))).toBeUndefined()
    // Alerts of other classes, and test alerts, schedule nothing.
    const fireAlert = await raise(unitId, { class: 'test', troubleType: null, severity: 'info' })
    expect(await t.app.jobs.getJob('timers', jobId('case-trigger', 'open_trouble', fireAlert.id))).toBeUndefined()
  })

  it('opens the case when the alert is still unresolved, assigned to the nearest inspector; a recurrence joins it', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const near = await createUser(t.api, 'inspector', place.district)
    await createUser(t.api, 'inspector', place.city)
    const a1 = await raise(unitId)
    await fire(a1.id)
    const [k] = await casesOf(unitId)
    expect(k).toMatchObject({ policy: 'open_trouble', severity: 'general', status: 'assigned', assignee: near.id, openedBy: 'system' })
    // The deadline of the file's defaults (1 h here).
    expect(Date.parse(k!.deadline) - Date.parse(k!.openedAt)).toBeGreaterThan(3_599_000)
    const a2 = await raise(unitId, { class: 'isolation', troubleType: null, severity: 'info' })
    await fire(a2.id)
    await fire(a2.id) // the timer again (a retry): nothing more
    const all = await casesOf(unitId)
    expect(all).toHaveLength(1)
    const d = (await t.api<Detail>('GET', `/api/v1/cases/${k!.id}`)).body
    expect(d.alerts.map((a) => a.id)).toEqual([a1.id, a2.id])
    expect(d.transitions.map((s) => s.action)).toEqual(['opened', 'alert_linked', 'assigned', 'alert_linked'])
  })

  it('a timer firing again after its case was closed opens no second case for the same alert', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    await createUser(t.api, 'inspector', place.district)
    const a = await raise(unitId)
    await fire(a.id)
    const [k] = await casesOf(unitId)
    // The inspector verifies on site (evidence not all ok is allowed) and closes; the alert is still unresolved.
    for (const s of ['submit', 'verify', 'close']) expect((await t.api('POST', `/api/v1/cases/${k!.id}/${s}`, {})).status).toBe(200)
    await fire(a.id) // a retry of the same timer
    expect((await casesOf(unitId)).map((c) => [c.id, c.status])).toEqual([[k!.id, 'closed']])
  })

  it('does nothing when the alert was resolved before the timer, or the unit is not high-risk', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const a = await raise(unitId)
    await t.app.alerts.resolve(a.id, 'op', 'device_fault', 'replaced')
    await fire(a.id)
    expect(await casesOf(unitId)).toEqual([])
    const general = await createUnitIn(t.api, place.district, 'general')
    await fire((await raise(general)).id)
    expect(await casesOf(general)).toEqual([])
  })
})

describe('the catch-up sweep', () => {
  it('opens the case of an alert unresolved past the policy time without a timer, once', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    // Raised two days ago, before the policy existed: its timer was never scheduled.
    const old = await raise(unitId, { at: new Date(Date.now() - 2 * 86_400_000) })
    await t.app.jobs.cancel('timers', jobId('case-trigger', 'open_trouble', old.id))
    const recent = await raise(unitId)
    await t.app.followUp.sweep()
    const [k] = await casesOf(unitId)
    expect(k).toMatchObject({ policy: 'open_trouble' })
    const d = (await t.api<Detail>('GET', `/api/v1/cases/${k!.id}`)).body
    expect(d.alerts.map((a) => a.id)).toEqual([old.id])
    expect(d.alerts.map((a) => a.id)).not.toContain(recent.id)
    await t.app.followUp.sweep()
    expect((await t.api<Detail>('GET', `/api/v1/cases/${k!.id}`)).body.transitions.filter((s) => s.action === 'alert_linked')).toHaveLength(1)
  })
})

describe('cases opened by the risk level', () => {
  it('opens one major case when the level reaches high from below, none for medium or a level that stays up', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const risk = (level: 'low' | 'medium' | 'high' | 'critical', previous: 'low' | 'medium' | 'high' | 'critical' | null) =>
      t.app.followUp.triggers.onRisk({ unitId, score: 70, level, factors: [] as never, computedAt: new Date().toISOString() }, previous)
    await risk('medium', null)
    expect(await casesOf(unitId)).toEqual([])
    await risk('high', 'medium')
    await risk('critical', 'high')
    const cases = await casesOf(unitId)
    expect(cases).toHaveLength(1)
    expect(cases[0]).toMatchObject({ policy: 'risk_high', severity: 'major', status: 'open', assignee: null })
    expect(Date.parse(cases[0]!.deadline) - Date.parse(cases[0]!.openedAt)).toBeGreaterThan(7_199_000)
    // Closed; the level stays high: nothing new. It drops and comes back: a new case.
    await t.api('POST', `/api/v1/cases/${cases[0]!.id}/submit`, {})
    await t.api('POST', `/api/v1/cases/${cases[0]!.id}/verify`, {})
    expect((await t.api<Case>('POST', `/api/v1/cases/${cases[0]!.id}/close`, {})).body.status).toBe('closed')
    await risk('high', 'high')
    expect(await casesOf(unitId)).toHaveLength(1)
    await risk('high', 'low')
    expect((await casesOf(unitId)).map((k) => k.status)).toEqual(['open', 'closed'])
  })

  it('hears the scores the risk service keeps, with the level they replaced', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const heard: [string, string | null][] = []
    t.app.risk.onScore((r, previous) => {
      if (r.unitId === unitId) heard.push([r.level, previous])
    })
    const first = await t.app.risk.recompute(unitId)
    await t.app.risk.recompute(unitId)
    expect(heard).toEqual([
      [first.level, null],
      [first.level, first.level]
    ])
  })
})

describe('assignment', () => {
  const open = (unitId: string) => t.api<Case>('POST', '/api/v1/cases', { unitId, severity: 'general', title: 'exit blocked' })

  it('prefers the inspector with the fewest open cases among the nearest', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const a = await createUser(t.api, 'inspector', place.district)
    const b = await createUser(t.api, 'inspector', place.district)
    const first = (await open(unitId)).body
    const second = (await open(unitId)).body
    expect(new Set([first.assignee, second.assignee])).toEqual(new Set([a.id, b.id]))
  })

  it('never assigns an inspector with a conflict of interest recorded against the unit (回避), automatically or by hand', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const conflicted = await createUser(t.api, 'inspector', place.district)
    const city = await createUser(t.api, 'inspector', place.city)
    const c = await t.api('POST', `/api/v1/units/${unitId}/conflicts`, { userId: conflicted.id, reason: 'relative of the manager' })
    expect(c.status).toBe(201)
    // The conflicted inspector is the nearest with no open case: without the conflict the case would be theirs.
    const k = (await open(unitId)).body
    expect(k).toMatchObject({ status: 'assigned', assignee: city.id })
    const refused = await t.api<{ code: string; field: string }>('POST', `/api/v1/cases/${k.id}/assign`, { assignee: conflicted.id })
    expect(refused).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'assignee' } })
  })

  it('leaves a case open when no inspector covers the unit; it is assigned by hand to one that does', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    const elsewhere = await createUser(t.api, 'inspector', place.other)
    const k = (await open(unitId)).body
    expect(k).toMatchObject({ status: 'open', assignee: null })
    const listed = await t.api<{ items: Case[] }>('GET', `/api/v1/cases?status=open&unitId=${unitId}`)
    expect(listed.body.items.map((c) => c.id)).toEqual([k.id])
    const refused = await t.api<{ code: string; field: string }>('POST', `/api/v1/cases/${k.id}/assign`, { assignee: elsewhere.id })
    expect(refused).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'assignee' } })
    const city = await createUser(t.api, 'inspector', place.city)
    const r = await t.api<Case>('POST', `/api/v1/cases/${k.id}/assign`, { assignee: city.id, comment: 'district post vacant' })
    expect(r.body).toMatchObject({ status: 'assigned', assignee: city.id })
    const byAssignee = await t.api<{ items: Case[] }>('GET', `/api/v1/cases?assignee=${city.id}`)
    expect(byAssignee.body.items.map((c) => c.id)).toEqual([k.id])
  })
})

describe('policy file', () => {
  const shipped = readFileSync(new URL('../rules/followup/policy.yaml', import.meta.url), 'utf8')

  it('loads the shipped policy', () => {
    const p = parseFollowUpPolicy(shipped, 'policy.yaml')
    expect(p.policies.map((x) => x.id)).toEqual(['trouble_open_high_risk', 'sprinkler_pressure_low', 'repeated_false_alarms', 'risk_level_high'])
    expect(p.credit.dishonestPoints).toBe(10)
  })

  it('names the policy and the field of an error', () => {
    const bad = shipped.replace('severity: major\n    deadlineS: 259200', 'severity: huge\n    deadlineS: 259200')
    expect(() => parseFollowUpPolicy(bad, 'policy.yaml')).toThrow(/policy\.yaml: policy sprinkler_pressure_low: severity/)
    const unknown = shipped.replace('forS: 0 }', 'forS: 0, after: 3 }')
    expect(() => parseFollowUpPolicy(unknown, 'policy.yaml')).toThrow(/policy repeated_false_alarms: when/)
    expect(() => parseFollowUpPolicy(shipped.replace('dishonestPoints: 10', 'dishonestPoints: 0'), 'p.yaml')).toThrow(/p\.yaml: .credit.dishonestPoints/)
    const twice = shipped.replace('id: risk_level_high', 'id: sprinkler_pressure_low')
    expect(() => parseFollowUpPolicy(twice, 'p.yaml')).toThrow(/policy sprinkler_pressure_low: id is defined twice/)
  })

  it('stops start-up on an invalid file', async () => {
    const file = writePolicy('defaults: { deadlineS: -1 }')
    try {
      const config = testConfig(uniqueNames('badpolicy'), { FOLLOWUP_FILE: file })
      await expect(buildApp(config, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'FW_ERR_FOLLOWUP_POLICY' })
    } finally {
      rmSync(path.dirname(file), { recursive: true, force: true })
    }
  })
})
