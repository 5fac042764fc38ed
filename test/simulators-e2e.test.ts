/** The simulators against a real Firewatch app: what they publish is acknowledged, stored and served back. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, waitFor, type TestApp } from './helpers/env.js'
import { runSprinklerPressure } from '../simulators/sprinkler-pressure.js'
import { runPanel } from '../simulators/panel.js'
import { runLoad } from '../simulators/load-generator.js'
import { PANEL_TIMELINE } from '../simulators/scenarios/panel.js'

interface EventsReply {
  events: { ts: number; type: string; point: string; text: string; seq: number | null }[]
}

describe('simulators against a Firewatch app', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp()
  })
  afterAll(async () => {
    await t?.dispose()
  })

  const count = async (where: string) => {
    const s = await t.app.store.query(`SELECT count("seq") FROM "readings" WHERE ${where}`)
    return (s[0]?.values[0]?.[1] as number | undefined) ?? 0
  }

  it('stores the sprinkler readings and the panel fire sequence', async () => {
    const [press, panel] = await Promise.all([t.provision('sprinkler_pressure'), t.provision('alarm_panel')])
    const common = { url: t.mqttUrl, intervalMs: 100, durationS: 2, seed: 1, quiet: true }
    const [pressRun, panelRun] = await Promise.all([
      runSprinklerPressure({ ...common, id: press.id, secret: press.secret, scenario: 'normal' }),
      runPanel({ ...common, id: panel.id, secret: panel.secret, scenario: 'fire' })
    ])
    const [pressStats, panelStats] = await Promise.all([pressRun.done, panelRun.done])
    expect(pressStats.steps).toBe(20)
    expect(pressStats).toMatchObject({ published: 20, acked: 20, failed: 0 })
    expect(panelStats).toMatchObject({ steps: 20, published: 23, acked: 23, failed: 0 })

    const rows = await waitFor(async () => {
      const s = await t.app.store.query(`SELECT "pressure_mpa", "seq" FROM "readings" WHERE "device_id" = '${press.id}'`)
      return s[0]?.values.length === 20 ? s[0].values : null
    })
    expect(rows.map((r) => r[2])).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    for (const r of rows) expect(r[1]).toBeGreaterThanOrEqual(0.25)

    const events = await waitFor(async () => {
      const r = await t.api<EventsReply>('GET', `/api/v1/devices/${panel.id}/events`)
      return r.body.events.length === 3 ? r.body.events : null
    })
    expect(events.map((e) => e.type)).toEqual(['fire', 'restore', 'reset'])
    expect(events[0]!.point).toMatch(/^\d-\d{2}-\d{3}$/)
    expect(events[1]!.point).toBe(events[0]!.point)
    expect(events[2]!.ts - events[0]!.ts).toBeGreaterThanOrEqual((PANEL_TIMELINE.fire.reset - PANEL_TIMELINE.fire.alarm - 1) * 100)

    // Online while running, offline once stopped: the last status is the one the simulator said on closing.
    const status = await waitFor(async () => {
      const s = await t.app.store.query(`SELECT "online" FROM "device_status" WHERE "device_id" = '${panel.id}'`)
      return s[0]?.values.length === 2 ? s[0].values.map((v) => v[1]) : null
    })
    expect(status).toEqual([true, false])
  })

  it('answers a self_test command with a test event', async () => {
    const dev = await t.provision('sprinkler_pressure')
    const sim = await runSprinklerPressure({ url: t.mqttUrl, id: dev.id, secret: dev.secret, intervalMs: 500, durationS: 0, scenario: 'normal', seed: 2, quiet: true })
    try {
      await new Promise<void>((resolve, reject) =>
        t.app.broker!.aedes.publish(
          { cmd: 'publish', topic: `v1/devices/${dev.id}/commands`, payload: Buffer.from('{"cmd":"self_test"}'), qos: 1, retain: false, dup: false },
          (err) => (err ? reject(err) : resolve())
        )
      )
      const events = await waitFor(async () => {
        const r = await t.api<EventsReply>('GET', `/api/v1/devices/${dev.id}/events?type=test`)
        return r.body.events.length > 0 ? r.body.events : null
      })
      expect(events[0]!.type).toBe('test')
    } finally {
      await sim.stop()
    }
  })

  it('refuses to start with a wrong secret, without retrying', async () => {
    const dev = await t.provision('alarm_panel')
    const started = Date.now()
    await expect(
      runPanel({ url: t.mqttUrl, id: dev.id, secret: 'wrong', intervalMs: 100, durationS: 1, scenario: 'quiet', seed: 1, quiet: true })
    ).rejects.toThrow(/refused the connection.*Bad username or password/)
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('runLoad: every message of 5 devices acknowledged and stored', async () => {
    const devices = await Promise.all(Array.from({ length: 5 }, () => t.provision('sprinkler_pressure')))
    const summary = await runLoad({
      url: t.mqttUrl,
      devices: devices.map(({ id, secret }) => ({ id, secret })),
      rate: 50,
      durationS: 2,
      batch: 2
    })
    expect(summary).toMatchObject({ devices: 5, sent: 100, acked: 100, failed: 0 })
    expect(summary.durationS).toBeGreaterThanOrEqual(1.9)
    expect(summary.p50AckMs).toBeGreaterThan(0)
    expect(summary.p99AckMs).toBeGreaterThanOrEqual(summary.p50AckMs!)
    const ids = devices.map((d) => `"device_id" = '${d.id}'`).join(' OR ')
    await waitFor(async () => (await count(ids)) === 200)
  })
})
