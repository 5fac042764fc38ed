/**
 * The follow-up loop end to end (issue 6, must show): a simulated unit's sprinkler pressure stays low past the
 * (shortened) policy time → a case opens and is assigned to the inspector of the unit's district; nothing is done, and
 * the overdue timer, scheduled before a restart, fires after it; the rectification is submitted, the device data
 * confirms it once the pressure has been normal for the hold time, the inspector verifies, the case closes. Every
 * step is in case_transitions with its actor; the overdue major hazard is on the unit's credit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { apiWithToken, loginAt, provisionAt, startTestApp, uniqueNames, waitFor, type ApiCall, type TestApp } from './helpers/env.js'
import { createPlace, createUnitIn, createUser, policyDoc, writePolicy } from './helpers/followup.js'
import type { Case, CaseTransition, Evidence } from '../schemas/cases.js'
import { jobId } from '../src/rules/jobs.js'

type Detail = Case & { transitions: CaseTransition[]; alerts: { id: string; ruleId: string; status: string }[] }

const rulesDir = mkdtempSync(path.join(tmpdir(), 'fw-followup-rules-'))
// The shipped pressure_low rule with a 1 s hold instead of 2 min.
writeFileSync(
  path.join(rulesDir, 'short.yaml'),
  [
    'rules:',
    '  - id: pressure_low',
    '    title: Sprinkler pressure below 0.05 MPa',
    '    class: supervisory',
    '    severity: major',
    '    kinds: [sprinkler_pressure]',
    '    when: { threshold: { metric: pressure_mpa, below: 0.05, clear: 0.06 } }',
    '    forS: 1'
  ].join('\n')
)
const DEADLINE_S = 10
const policyFile = writePolicy(
  policyDoc({
    policies: [
      { id: 'sprinkler_pressure_low', title: 'Sprinkler pressure low', severity: 'major', deadlineS: DEADLINE_S, when: { alertOpen: { rules: ['pressure_low'], forS: 2 } } }
    ]
  })
)
const names = uniqueNames('followup')
const env = { RULE_ENGINE: 'true', RULES_DIR: rulesDir, FOLLOWUP_FILE: policyFile, SWEEP_INTERVAL_MS: '60000' }
let t: TestApp
let seq = 0
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  t = await startTestApp(names, env)
})
afterAll(async () => {
  await t?.dispose()
  rmSync(rulesDir, { recursive: true, force: true })
  rmSync(path.dirname(policyFile), { recursive: true, force: true })
})

describe('a low sprinkler pressure becomes a case, goes overdue across a restart, is rectified, verified and closed', () => {
  it('runs the whole loop', async () => {
    const place = await createPlace(t.api)
    const unitId = await createUnitIn(t.api, place.district)
    // The district's inspector is nearer than the city's: the case goes to the district's.
    const near = await createUser(t.api, 'inspector', place.district)
    await createUser(t.api, 'inspector', place.city)
    await createUser(t.api, 'inspector', place.other)
    const operator = await createUser(t.api, 'operator', place.district)
    const dev = await provisionAt(t.api, 'sprinkler_pressure', unitId)

    const send = async (mpa: number) => {
      const c = await mqtt.connectAsync(t.mqttUrl, { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0 })
      await c.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: ++seq, values: { pressure_mpa: mpa } }), { qos: 1 })
      return c
    }
    const low = await send(0.02)
    const cases = async () => (await t.api<{ items: Case[] }>('GET', `/api/v1/cases?unitId=${unitId}`)).body.items
    const [opened] = await waitFor(async () => ((await cases()).length ? cases() : null), 20_000, 200)
    expect(opened).toMatchObject({ policy: 'sprinkler_pressure_low', severity: 'major', status: 'assigned', assignee: near.id, overdueAt: null })
    await low.endAsync()
    // The overdue timer is a delayed BullMQ job with the case's id.
    const timer = await t.app.jobs.getJob('timers', jobId('case-overdue', opened!.id))
    expect(await timer?.getState()).toBe('delayed')

    // Nothing is done. Restart the server before the deadline: the overdue timer lives in Redis, not in the process.
    await t.stop()
    t = await startTestApp(names, env)
    const restartedAt = Date.now()
    expect(restartedAt, 'the restart took longer than the deadline: this run proves nothing').toBeLessThan(Date.parse(opened!.deadline))
    const overdue = await waitFor(async () => {
      const [k] = await cases()
      return k?.status === 'overdue' ? k : null
    }, 30_000, 200)
    expect(Date.parse(overdue.overdueAt!)).toBeGreaterThanOrEqual(Date.parse(opened!.deadline))

    // The overdue major hazard is on the credit record, and lists the unit as dishonest.
    const credit = await t.api<{ dishonest: boolean; points: number; entries: { kind: string; caseId: string }[] }>('GET', `/api/v1/units/${unitId}/credit`)
    expect(credit.body).toMatchObject({ dishonest: true, points: 10, entries: [{ kind: 'overdue_major', caseId: opened!.id }] })

    // The unit repairs the pump: the device reports normal pressure from now on.
    const base = `http://127.0.0.1:${t.httpPort}`
    const as = async (u: { username: string; password: string }): Promise<ApiCall> => {
      const { accessToken } = await loginAt(base, u.username, u.password)
      return apiWithToken(base, () => accessToken)
    }
    const inspector = await as(near)
    const op = await as(operator)
    const normal = await send(0.3)
    let pumping = true
    const pump = (async () => {
      while (pumping) {
        await sleep(300)
        await normal.publishAsync(`v1/devices/${dev.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: ++seq, values: { pressure_mpa: 0.3 } }), { qos: 1 })
      }
    })()
    try {
      // The alert clears once the engine sees the normal reading.
      await waitFor(async () => {
        const d = (await inspector<Detail>('GET', `/api/v1/cases/${opened!.id}`)).body
        return d.alerts.every((a) => a.status === 'resolved')
      }, 15_000, 200)
      // Submitted at once: the pressure has not been normal for the hold time yet, and the reply says so.
      const submitted = await op<Case & { evidenceOk: boolean; warning?: string }>('POST', `/api/v1/cases/${opened!.id}/submit`, {
        comment: 'pump repaired, valve reopened',
        attachments: [{ name: 'repair report', ref: 'docs://reports/pump-1' }]
      })
      expect(submitted.status).toBe(200)
      expect(submitted.body.status).toBe('rectification_submitted')
      const pressureAt = (e: Evidence[]) => e.find((x) => x.check === 'pressure_normal')
      expect(pressureAt(submitted.body.evidence)?.ok).toBe(false)
      expect(submitted.body.warning).toMatch(/pressure_normal/)

      // The inspector opens the case: evidence computed afresh until the pressure has held for the 3 s of the policy.
      const confirmed = await waitFor(async () => {
        const d = (await inspector<Detail>('GET', `/api/v1/cases/${opened!.id}`)).body
        return d.evidence.every((e) => e.ok) ? d : null
      }, 20_000, 300)
      expect(confirmed.evidence.map((e) => e.check).sort()).toEqual(['alerts_resolved', 'devices_online', 'isolation_lifted', 'pressure_normal'])
    } finally {
      pumping = false
      await pump
      await normal.endAsync()
    }

    const verified = await inspector<Case & { evidenceOk: boolean }>('POST', `/api/v1/cases/${opened!.id}/verify`, { comment: 'pressure held, checked remotely' })
    expect(verified.status).toBe(200)
    expect(verified.body).toMatchObject({ status: 'verified', evidenceOk: true, verifiedBy: near.username })
    const closed = await inspector<Case>('POST', `/api/v1/cases/${opened!.id}/close`, {})
    expect(closed.body).toMatchObject({ status: 'closed', overdueAt: overdue.overdueAt })

    const detail = (await t.api<Detail>('GET', `/api/v1/cases/${opened!.id}`)).body
    expect(detail.transitions.map((s) => [s.action, s.actor, s.toStatus])).toEqual([
      ['opened', 'system', 'open'],
      ['alert_linked', 'system', 'open'],
      ['assigned', 'system', 'assigned'],
      ['overdue', 'system', 'overdue'],
      ['submitted', operator.username, 'rectification_submitted'],
      ['verified', near.username, 'verified'],
      ['closed', near.username, 'closed']
    ])
    const submit = detail.transitions.find((s) => s.action === 'submitted')!
    expect(submit).toMatchObject({ comment: 'pump repaired, valve reopened', attachments: [{ name: 'repair report', ref: 'docs://reports/pump-1' }] })
    const verify = detail.transitions.find((s) => s.action === 'verified')!
    expect((verify.data.evidence as Evidence[]).every((e) => e.ok)).toBe(true)
    // Overdue stays on the record: the list of cases that went overdue still holds it.
    const overdueList = await t.api<{ items: Case[] }>('GET', `/api/v1/cases?overdue=true&unitId=${unitId}`)
    expect(overdueList.body.items.map((k) => k.id)).toEqual([opened!.id])
  }, 120_000)
})
