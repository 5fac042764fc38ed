/**
 * The summary report against PostgreSQL: alerts with known timings written straight into the alerts table, then every
 * figure of the JSON and of the CSV asserted; alerts outside the period or the subtree do not count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { ROOT_USER, loginAt, startTestApp, type TestApp } from './helpers/env.js'
import type { Summary } from '../schemas/reports.js'

let t: TestApp
let db: pg.Client
const CITY = 'city-r'
const X = 'district-rx'
const Y = 'district-ry'
const FROM = '2026-11-01T00:00:00.000Z'
const TO = '2026-12-01T00:00:00.000Z'
const Q = `/api/v1/reports/summary?jurisdictionId=${X}&from=${FROM}&to=${TO}`

let seq = 0
interface Seed {
  unit: string
  cls: string
  at?: string
  /** Seconds after first seen. */
  ack?: number
  resolve?: number
  disposition?: string
}
/** An alert with exactly these times, through SQL (the rule engine's path would stamp them with now()). */
async function alert({ unit, cls, at = '2026-11-02T10:00:00.000Z', ack, resolve, disposition }: Seed): Promise<void> {
  const first = new Date(at)
  const plus = (s: number | undefined) => (s === undefined ? null : new Date(first.getTime() + s * 1000))
  const status = resolve !== undefined ? 'resolved' : ack !== undefined ? 'acknowledged' : 'open'
  await db.query(
    `INSERT INTO alerts (unit_id, rule_id, class, trouble_type, severity, title, first_seen, last_seen, status, acknowledged_at, resolved_at, disposition)
     VALUES ($1, $2, $3, $4, 'major', 'seeded', $5, $5, $6, $7, $8, $9)`,
    [unit, `report-${++seq}`, cls, cls === 'trouble' ? 'fault' : null, first, status, plus(ack), plus(resolve), disposition ?? null]
  )
}

async function root(method: string, path: string, body?: unknown): Promise<void> {
  const r = await t.api(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
}
const unit = (id: string, jurisdictionId: string) =>
  root('POST', '/api/v1/units', { id, jurisdictionId, name: id, address: 'Road 1', category: 'key', contactName: 'Duty', contactPhone: '0571-0000000' })

beforeAll(async () => {
  t = await startTestApp()
  db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
  await db.connect()
  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: 'City R', level: 'city' })
  for (const j of [X, Y]) await root('POST', '/api/v1/jurisdictions', { id: j, parentId: CITY, name: j, level: 'district' })
  await unit('ux1', X)
  await unit('ux2', X)
  await unit('uy1', Y)
  await db.query(`INSERT INTO unit_risk (unit_id, score, level, factors, computed_at) VALUES ('ux1', 70, 'high', '[]', now())`)

  await alert({ unit: 'ux1', cls: 'fire', ack: 30, resolve: 600, disposition: 'false_alarm' })
  await alert({ unit: 'ux1', cls: 'fire', ack: 10, resolve: 200, disposition: 'false_alarm' })
  await alert({ unit: 'ux1', cls: 'fire', ack: 20, resolve: 400, disposition: 'real_fire' })
  await alert({ unit: 'ux2', cls: 'fire', ack: 60, resolve: 1000, disposition: 'false_alarm' })
  await alert({ unit: 'ux2', cls: 'fire' }) // open, nobody acknowledged it yet
  await alert({ unit: 'ux2', cls: 'fire', ack: 5, resolve: 5, disposition: 'test' }) // a drill: out of rates and times
  await alert({ unit: 'ux1', cls: 'trouble', ack: 100, resolve: 3600, disposition: 'device_fault' })
  await alert({ unit: 'ux1', cls: 'trouble', resolve: 1800, disposition: 'restored' }) // cleared by itself, never acknowledged
  await alert({ unit: 'ux2', cls: 'test', ack: 1, resolve: 2, disposition: 'test' }) // a device in test mode
  await alert({ unit: 'ux1', cls: 'supervisory', ack: 40 })
  // Not counted: before the period, at its (exclusive) end, and in the neighbouring district.
  await alert({ unit: 'ux1', cls: 'fire', at: '2026-10-31T23:59:59.999Z', ack: 1, resolve: 2, disposition: 'false_alarm' })
  await alert({ unit: 'ux1', cls: 'fire', at: TO, ack: 1, resolve: 2, disposition: 'false_alarm' })
  await alert({ unit: 'uy1', cls: 'fire', ack: 1, resolve: 2, disposition: 'false_alarm' })

  // Cases: major opened in the period and gone overdue in it; general opened before it and closed in it; major opened
  // and closed in it; general opened in it and still open; one of the neighbouring district; one opened after the period.
  await kase({ unit: 'ux1', severity: 'major', opened: '2026-11-03T00:00:00Z', overdue: '2026-11-20T00:00:00Z' })
  await kase({ unit: 'ux1', severity: 'general', opened: '2026-10-15T00:00:00Z', closed: '2026-11-05T00:00:00Z' })
  await kase({ unit: 'ux2', severity: 'major', opened: '2026-11-10T00:00:00Z', closed: '2026-11-25T00:00:00Z' })
  await kase({ unit: 'ux2', severity: 'general', opened: '2026-11-28T00:00:00Z' })
  await kase({ unit: 'uy1', severity: 'major', opened: '2026-11-03T00:00:00Z', overdue: '2026-11-20T00:00:00Z' })
  await kase({ unit: 'ux1', severity: 'major', opened: '2026-12-02T00:00:00Z' })
})

/** A case with exactly these times, through SQL (columns of src/store/migrations/040_cases.sql). */
async function kase(c: { unit: string; severity: string; opened: string; overdue?: string; closed?: string }): Promise<void> {
  const status = c.closed ? 'closed' : c.overdue ? 'overdue' : 'open'
  await db.query(
    `INSERT INTO cases (unit_id, status, severity, title, opened_at, opened_by, deadline, overdue_at, closed_at)
     VALUES ($1, $2, $3, 'seeded', $4, 'system', $4::timestamptz + interval '7 days', $5, $6)`,
    [c.unit, status, c.severity, c.opened, c.overdue ?? null, c.closed ?? null]
  )
}
afterAll(async () => {
  await db?.end()
  await t?.dispose()
})

const EXPECTED: Omit<Summary, 'generatedAt'> = {
  jurisdictionId: X,
  from: FROM,
  to: TO,
  alertsByClass: [
    { class: 'fire', count: 6 },
    { class: 'supervisory', count: 1 },
    { class: 'trouble', count: 2 },
    { class: 'isolation', count: 0 },
    { class: 'test', count: 1 }
  ],
  alertsByDisposition: [
    { disposition: 'real_fire', count: 1 },
    { disposition: 'false_alarm', count: 3 },
    { disposition: 'test', count: 1 },
    { disposition: 'device_fault', count: 1 },
    { disposition: 'other', count: 0 },
    { disposition: 'restored', count: 1 },
    { disposition: 'unresolved', count: 2 }
  ],
  falseAlarms: {
    overall: { falseAlarms: 3, resolvedFire: 4, rate: 0.75 },
    units: [
      { unitId: 'ux1', falseAlarms: 2, resolvedFire: 3, rate: 0.6667 },
      { unitId: 'ux2', falseAlarms: 1, resolvedFire: 1, rate: 1 }
    ]
  },
  responseTimes: [
    // (30 + 10 + 20 + 60) / 4 = 30; (600 + 200 + 400 + 1000) / 4 = 550
    { class: 'fire', acknowledged: 4, meanSecondsToAcknowledge: 30, resolved: 4, meanSecondsToResolve: 550 },
    { class: 'supervisory', acknowledged: 1, meanSecondsToAcknowledge: 40, resolved: 0, meanSecondsToResolve: null },
    { class: 'trouble', acknowledged: 1, meanSecondsToAcknowledge: 100, resolved: 2, meanSecondsToResolve: 2700 },
    { class: 'isolation', acknowledged: 0, meanSecondsToAcknowledge: null, resolved: 0, meanSecondsToResolve: null },
    // 260 / 6 = 43.33…; 7600 / 6 = 1266.66…
    { class: 'all', acknowledged: 6, meanSecondsToAcknowledge: 43.3, resolved: 6, meanSecondsToResolve: 1266.7 }
  ],
  unitsByRisk: [
    { level: 'low', count: 0 },
    { level: 'medium', count: 0 },
    { level: 'high', count: 1 },
    { level: 'critical', count: 0 },
    { level: 'unscored', count: 1 }
  ],
  cases: [
    { severity: 'major', opened: 2, overdue: 1, closed: 1 },
    { severity: 'general', opened: 1, overdue: 0, closed: 1 },
    { severity: 'all', opened: 3, overdue: 1, closed: 2 }
  ]
}

describe('the summary report', () => {
  it('gives every figure as JSON', async () => {
    const r = await t.api<Summary>('GET', Q)
    expect(r.status).toBe(200)
    const { generatedAt, ...rest } = r.body
    expect(Date.parse(generatedAt)).toBeGreaterThan(Date.now() - 60_000)
    expect(rest).toEqual(EXPECTED)
  })

  it('gives the same figures as CSV, by Accept header or by format', async () => {
    const res = await fetch(`http://127.0.0.1:${t.httpPort}${Q}`, { headers: { authorization: `Bearer ${await token()}`, accept: 'text/csv' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/)
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="summary-${X}-2026-11-01-2026-12-01.csv"`)
    const lines = (await res.text()).trimEnd().split('\n')
    expect(lines[0]).toBe('section,key,metric,value')
    const body = lines.filter((l) => !l.startsWith('period,'))
    expect(body.slice(1)).toEqual([
      ...EXPECTED.alertsByClass.map((r) => `alerts_by_class,${r.class},count,${r.count}`),
      ...EXPECTED.alertsByDisposition.map((r) => `alerts_by_disposition,${r.disposition},count,${r.count}`),
      'false_alarms,overall,false_alarms,3',
      'false_alarms,overall,resolved_fire,4',
      'false_alarms,overall,rate,0.75',
      'false_alarms,ux1,false_alarms,2',
      'false_alarms,ux1,resolved_fire,3',
      'false_alarms,ux1,rate,0.6667',
      'false_alarms,ux2,false_alarms,1',
      'false_alarms,ux2,resolved_fire,1',
      'false_alarms,ux2,rate,1',
      ...EXPECTED.responseTimes.flatMap((r) => [
        `response_times,${r.class},acknowledged,${r.acknowledged}`,
        `response_times,${r.class},mean_seconds_to_acknowledge,${r.meanSecondsToAcknowledge ?? ''}`,
        `response_times,${r.class},resolved,${r.resolved}`,
        `response_times,${r.class},mean_seconds_to_resolve,${r.meanSecondsToResolve ?? ''}`
      ]),
      ...EXPECTED.unitsByRisk.map((r) => `units_by_risk,${r.level},count,${r.count}`),
      ...EXPECTED.cases.flatMap((r) => [`cases,${r.severity},opened,${r.opened}`, `cases,${r.severity},overdue,${r.overdue}`, `cases,${r.severity},closed,${r.closed}`])
    ])
    expect(lines.filter((l) => l.startsWith('period,'))).toEqual([`period,${X},from,${FROM}`, `period,${X},to,${TO}`, expect.stringMatching(new RegExp(`^period,${X},generated_at,`))])

    const byFormat = await fetch(`http://127.0.0.1:${t.httpPort}${Q}&format=csv`, { headers: { authorization: `Bearer ${await token()}` } })
    expect(byFormat.headers.get('content-type')).toMatch(/^text\/csv/)
    expect((await byFormat.text()).split('\n').filter((l) => !l.startsWith('period,'))).toEqual([lines[0], ...body.slice(1), ''])
  })

  it('counts the whole subtree: the city holds both districts', async () => {
    const r = await t.api<Summary>('GET', `/api/v1/reports/summary?jurisdictionId=${CITY}&from=${FROM}&to=${TO}`)
    expect(r.body.falseAlarms.overall).toEqual({ falseAlarms: 4, resolvedFire: 5, rate: 0.8 })
    expect(r.body.unitsByRisk.find((x) => x.level === 'unscored')!.count).toBe(2)
    expect(r.body.cases.at(-1)).toEqual({ severity: 'all', opened: 4, overdue: 2, closed: 2 })
  })

  it('answers an empty period with zeros and no means', async () => {
    const r = await t.api<Summary>('GET', `/api/v1/reports/summary?jurisdictionId=${X}&from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z`)
    expect(r.body.alertsByClass.every((x) => x.count === 0)).toBe(true)
    expect(r.body.falseAlarms).toEqual({ overall: { falseAlarms: 0, resolvedFire: 0, rate: null }, units: [] })
    expect(r.body.responseTimes.at(-1)).toEqual({ class: 'all', acknowledged: 0, meanSecondsToAcknowledge: null, resolved: 0, meanSecondsToResolve: null })
  })

  it('refuses a period that ends before it starts and a jurisdiction that does not exist', async () => {
    expect((await t.api('GET', `/api/v1/reports/summary?jurisdictionId=${X}&from=${TO}&to=${FROM}`)).body).toMatchObject({ code: 'FW_ERR_VALIDATION', field: 'from' })
    expect((await t.api('GET', `/api/v1/reports/summary?jurisdictionId=nowhere`)).status).toBe(404)
  })
})

/** The admin's bearer, for calls that need headers of their own. */
async function token(): Promise<string> {
  return (await loginAt(`http://127.0.0.1:${t.httpPort}`, ROOT_USER.username, ROOT_USER.password)).accessToken
}
