/**
 * The unit risk score: the pure scoring (each factor's direction, caps, levels), then the service and its API against
 * PostgreSQL and InfluxDB: alerts raised through the app's AlertService, a low pressure published over MQTT,
 * the history read back, InfluxDB unreachable.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { levelOf, LEVEL_FLOORS, RISK_WEIGHTS, scoreRisk, type RiskInputs } from '../src/alerts/risk-score.js'
import { RiskService } from '../src/alerts/risk.js'
import { InfluxStore, quoteString } from '../src/store/influx.js'
import type { RaiseInput } from '../src/alerts/alert-repository.js'
import type { RiskFactor, UnitRisk } from '../schemas/alerts.js'
import { createUnitAt, startTestApp, waitFor, type TestApp } from './helpers/env.js'

const base: RiskInputs = {
  category: 'general',
  openFire: 0,
  confirmedFire: 0,
  openSupervisory: 0,
  openTrouble: 0,
  activeIsolations: 0,
  devicesTotal: 4,
  devicesOffline: 0,
  falseAlarms: 0,
  lowestPressure: { deviceId: 'p1', mpa: 0.3 }
}
const score = (over: Partial<RiskInputs>) => scoreRisk({ ...base, ...over })
const factor = (r: { factors: RiskFactor[] }, name: string) => {
  const f = r.factors.find((x) => x.factor === name)
  if (!f) throw new Error(`no factor ${name}`)
  return f
}

describe('scoreRisk', () => {
  it('scores a quiet general unit 0, low, listing every factor with a note', () => {
    const r = score({})
    expect(r).toMatchObject({ score: 0, level: 'low' })
    expect(r.factors.map((f) => f.factor)).toEqual([
      'open_fire',
      'open_supervisory',
      'open_trouble',
      'offline_devices',
      'active_isolations',
      'false_alarm_rate',
      'pressure_margin',
      'category'
    ])
    for (const f of r.factors) {
      expect(f.points).toBe(0)
      expect(f.note.length).toBeGreaterThan(0)
    }
  })

  it.each<[string, Partial<RiskInputs>]>([
    ['open_fire', { openFire: 1 }],
    ['open_supervisory', { openSupervisory: 1 }],
    ['open_trouble', { openTrouble: 1 }],
    ['offline_devices', { devicesOffline: 1 }],
    ['active_isolations', { activeIsolations: 1 }],
    ['false_alarm_rate', { falseAlarms: 1 }],
    ['pressure_margin', { lowestPressure: { deviceId: 'p1', mpa: 0.06 } }],
    ['category', { category: 'key' }]
  ])('raises the score for %s', (name, over) => {
    const r = score(over)
    expect(factor(r, name).points).toBeGreaterThan(0)
    expect(r.score).toBe(factor(r, name).points)
    expect(Number.isInteger(r.score)).toBe(true)
  })

  it('adds more for more of the same, up to each cap', () => {
    const w = RISK_WEIGHTS
    expect(score({ openTrouble: 2 }).score).toBe(2 * w.troubleEach)
    expect(score({ openTrouble: 100 }).score).toBe(w.troubleCap)
    expect(score({ openSupervisory: 100 }).score).toBe(w.supervisoryCap)
    expect(score({ activeIsolations: 100 }).score).toBe(w.isolationCap)
    expect(score({ falseAlarms: 100 }).score).toBe(w.falseAlarmCap)
    expect(score({ devicesOffline: 2 }).score).toBe(w.offlineCap / 2)
    expect(score({ devicesOffline: 4 }).score).toBe(w.offlineCap)
    expect(score({ openFire: 2 }).score).toBeGreaterThan(score({ openFire: 1 }).score)
    expect(score({ openFire: 100 }).score).toBe(w.fireCap)
    expect(score({ category: 'high_risk' }).score).toBeGreaterThan(score({ category: 'key' }).score)
  })

  it('caps the total at 100', () => {
    const r = score({
      category: 'high_risk',
      openFire: 3,
      confirmedFire: 1,
      openSupervisory: 5,
      openTrouble: 5,
      activeIsolations: 5,
      devicesOffline: 4,
      falseAlarms: 9,
      lowestPressure: { deviceId: 'p1', mpa: 0 }
    })
    expect(r.factors.reduce((s, f) => s + f.points, 0)).toBeGreaterThan(100)
    expect(r).toMatchObject({ score: 100, level: 'critical' })
  })

  it('puts the level boundaries at 25, 50 and 75', () => {
    expect([0, 24, 25, 49, 50, 74, 75, 100].map(levelOf)).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical'])
    expect(LEVEL_FLOORS).toEqual({ medium: 25, high: 50, critical: 75 })
  })

  it('makes a unit high with one open fire alert alone, critical once it is confirmed', () => {
    expect(score({ openFire: 1 }).level).toBe('high')
    expect(score({ openFire: 1, confirmedFire: 1 }).level).toBe('critical')
    expect(score({ openFire: 1, category: 'high_risk', openTrouble: 1 }).level).toBe('high')
  })

  it('reads the pressure margin against the GB 50084 minimum of 0.05 MPa', () => {
    const at = (mpa: number) => factor(score({ lowestPressure: { deviceId: 'p1', mpa } }), 'pressure_margin')
    expect(at(0.02)).toMatchObject({ points: RISK_WEIGHTS.pressureBelow, value: -0.03 })
    expect(at(0.02).note).toMatch(/below/)
    expect(at(0.07)).toMatchObject({ points: RISK_WEIGHTS.pressureNear, value: 0.02 })
    expect(at(0.08)).toMatchObject({ points: 0, value: 0.03 })
    expect(at(0.05).points).toBe(RISK_WEIGHTS.pressureNear)
  })

  it('reports an unknown pressure with 0 points and still scores the rest', () => {
    const r = score({ lowestPressure: 'unknown', openTrouble: 1 })
    expect(factor(r, 'pressure_margin')).toMatchObject({ points: 0, value: null })
    expect(factor(r, 'pressure_margin').note).toMatch(/unknown/)
    expect(r.score).toBe(RISK_WEIGHTS.troubleEach)
    expect(factor(score({ lowestPressure: null }), 'pressure_margin')).toMatchObject({ points: 0, value: null })
  })

  it('adds nothing for offline devices of a unit without devices, and says so', () => {
    const f = factor(score({ devicesTotal: 0, devicesOffline: 0 }), 'offline_devices')
    expect(f.points).toBe(0)
    expect(f.note).toMatch(/no devices/)
  })
})

describe('RiskService and /units/{id}/risk', () => {
  let t: TestApp
  let seq = 0
  beforeAll(async () => {
    t = await startTestApp()
  })
  afterAll(async () => {
    await t?.dispose()
  })

  const raise = (unitId: string, over: Partial<RaiseInput> = {}) =>
    t.app.alerts.raise({
      unitId,
      deviceId: '',
      point: '',
      ruleId: `risk-test-${++seq}`,
      class: 'trouble',
      troubleType: 'fault',
      severity: 'minor',
      title: 'test trouble',
      detail: {},
      at: new Date(),
      ...over
    })
  const risk = (unitId: string) => t.api<UnitRisk>('GET', `/api/v1/units/${unitId}/risk`)
  type History = { unitId: string; points: { ts: number; score: number; level: string }[] }
  const history = (unitId: string, query = '') => t.api<History>('GET', `/api/v1/units/${unitId}/risk/history${query}`)

  it('scores a unit with an open trouble alert higher than without', async () => {
    const unitId = await createUnitAt(t.api)
    const before = await risk(unitId)
    expect(before.status).toBe(200)
    expect(factor(before.body, 'open_trouble').points).toBe(0)
    // createUnitAt makes a high-risk unit.
    expect(factor(before.body, 'category')).toMatchObject({ value: 'high_risk', points: RISK_WEIGHTS.category.high_risk })

    await raise(unitId)
    const after = await t.app.risk.recompute(unitId)
    expect(after.score).toBeGreaterThan(before.body.score)
    expect(factor(after, 'open_trouble')).toMatchObject({ value: 1, points: RISK_WEIGHTS.troubleEach })

    const served = await risk(unitId)
    expect(served.status).toBe(200)
    expect(served.body.score).toBe(after.score)
    expect(served.body.factors).toEqual(after.factors)
  })

  it('counts an open fire alert as at least high, and a two-source one as critical', async () => {
    const unitId = await createUnitAt(t.api)
    const fire = { class: 'fire', troubleType: null, severity: 'critical', title: 'smoke alarm' } as const
    await raise(unitId, { ...fire, verification: 'single_source' })
    expect((await t.app.risk.recompute(unitId)).level).toBe('high')
    await raise(unitId, { ...fire, verification: 'two_sources' })
    expect((await t.app.risk.recompute(unitId)).level).toBe('critical')
  })

  it('keeps the score in unit_risk and its history in InfluxDB, served oldest first', async () => {
    const unitId = await createUnitAt(t.api)
    const first = await t.app.risk.recompute(unitId)
    await raise(unitId, { class: 'supervisory', troubleType: null, severity: 'major' })
    const second = await t.app.risk.recompute(unitId)

    const { rows } = await t.app.risk.deps.pool.query('SELECT score, level, factors, computed_at FROM unit_risk WHERE unit_id = $1', [unitId])
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ score: second.score, level: second.level, factors: second.factors })
    expect((rows[0].computed_at as Date).toISOString()).toBe(second.computedAt)

    const h = await history(unitId)
    expect(h.status).toBe(200)
    expect(h.body.unitId).toBe(unitId)
    // The lead may have the app recompute on every alert change too: those points come on top.
    const mine = h.body.points.filter((p) => [first.computedAt, second.computedAt].includes(new Date(p.ts).toISOString()))
    expect(mine).toEqual([
      { ts: Date.parse(first.computedAt), score: first.score, level: first.level },
      { ts: Date.parse(second.computedAt), score: second.score, level: second.level }
    ])
    const ts = h.body.points.map((p) => p.ts)
    expect(ts).toEqual([...ts].sort((a, b) => a - b))

    const past = await history(unitId, `?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`)
    expect(past).toMatchObject({ status: 200, body: { points: [] } })
    const backwards = await history(unitId, `?from=2020-01-02T00:00:00Z&to=2020-01-01T00:00:00Z`)
    expect(backwards).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field: 'from' } })
  })

  it('raises the pressure factor for a sprinkler pressure below 0.05 MPa, from its latest reading', async () => {
    const unitId = await createUnitAt(t.api)
    const dev = await t.provision('sprinkler_pressure', unitId)
    const publish = (ts: number, seq: number, mpa: number) =>
      promisify(execFile)('mosquitto_pub', [
        ...['-h', '127.0.0.1', '-p', String(t.mqttPort), '-i', dev.id, '-u', dev.id, '-P', dev.secret, '-q', '1'],
        ...['-t', `v1/devices/${dev.id}/telemetry`, '-m', JSON.stringify({ ts, seq, values: { pressure_mpa: mpa } })]
      ])
    const stored = (n: number) =>
      waitFor(async () => {
        const s = await t.app.store.query(`SELECT count("pressure_mpa") FROM "readings" WHERE "device_id" = ${quoteString(dev.id)}`)
        return Number(s[0]?.values[0]?.[1] ?? 0) >= n
      })

    const healthy = await t.app.risk.recompute(unitId)
    expect(factor(healthy, 'pressure_margin')).toMatchObject({ points: 0, value: null })

    // Two minutes apart: a drop within a minute would also raise the fast-drop rule, and its alert would add points.
    await publish(Date.now() - 120_000, 1, 0.3)
    await publish(Date.now() - 1000, 2, 0.02)
    await stored(2)
    const low = await t.app.risk.recompute(unitId)
    expect(factor(low, 'pressure_margin')).toMatchObject({ points: RISK_WEIGHTS.pressureBelow, value: -0.03 })
    expect(factor(low, 'pressure_margin').note).toContain(dev.id)
    expect(low.score).toBe(healthy.score - factor(healthy, 'offline_devices').points + factor(low, 'offline_devices').points + RISK_WEIGHTS.pressureBelow)

    await publish(Date.now(), 3, 0.32)
    await stored(3)
    expect(factor(await t.app.risk.recompute(unitId), 'pressure_margin')).toMatchObject({ points: 0, value: 0.27 })
  })

  it('still scores, with the pressure unknown, when InfluxDB cannot be reached', async () => {
    const unitId = await createUnitAt(t.api)
    await t.provision('sprinkler_pressure', unitId)
    await raise(unitId)
    const lines: string[] = []
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) })
    // Port 1 on loopback: connection refused at once.
    const store = new InfluxStore({ url: 'http://127.0.0.1:1', database: t.names.influxDb, token: null, timeoutMs: 2000 })
    const offline = new RiskService({ pool: t.app.risk.deps.pool, store, log })

    const r = await offline.recompute(unitId)
    expect(factor(r, 'pressure_margin')).toMatchObject({ points: 0, value: null })
    expect(factor(r, 'pressure_margin').note).toMatch(/unknown/)
    expect(factor(r, 'open_trouble').points).toBe(RISK_WEIGHTS.troubleEach)
    expect((await offline.get(unitId))?.score).toBe(r.score)
    expect(lines.join('')).toMatch(/risk pressure factor unknown/)
    expect(lines.join('')).toMatch(/history point not written/)
  })

  it('recomputes in the background on alert changes, coalescing a burst', async () => {
    const unitId = await createUnitAt(t.api)
    await t.app.risk.recompute(unitId)
    for (let i = 0; i < 5; i++) {
      const { alert } = await raise(unitId)
      t.app.risk.onAlertChange(alert)
    }
    await t.app.risk.idle()
    const stored = await t.app.risk.get(unitId)
    expect(factor(stored!, 'open_trouble').value).toBe(5)
  })

  it('answers 404 for a unit that does not exist', async () => {
    expect(await risk('no-such-unit')).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
    expect(await history('no-such-unit')).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } })
    expect(await t.app.risk.get('no-such-unit')).toBeNull()
    await expect(t.app.risk.recompute('no-such-unit')).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' })
  })
})
