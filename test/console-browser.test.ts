/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core): an operator logs in, a panel
 * publishes a fire event over MQTT, the rule engine raises the fire alarm and the console shows it within a second of
 * the publish acknowledgement; the operator acknowledges it and resolves it as a false alarm, and the alert's history
 * records both steps with the operator as actor. Then the other pages: risk ranking, unit, device chart, language.
 *
 * Chromium is installed by scripts/chromium.sh when missing; when it cannot be, this file fails (it never skips).
 * CONSOLE_SCREENSHOT=docs/console.png writes the screenshot of the docs; otherwise it goes to a temporary folder.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { chromium, type BrowserContext, type Page, type WebSocketRoute } from 'playwright-core'
import { REDIS_URL, provisionAt, startTestApp, waitFor, type TestApp } from './helpers/env.js'
import type { Alert, AlertTransition } from '../schemas/alerts.js'

const OPERATOR = { username: 'console-operator', password: 'console-operator-password', displayName: '一号值班席' }
const CITY = 'console-city'
const DISTRICT = 'console-district'
const UNITS = [
  { id: 'console-mall', name: '滨江商业广场', address: '江南大道 1 号', category: 'high_risk' },
  { id: 'console-hotel', name: '西湖宾馆', address: '北山路 2 号', category: 'key' }
] as const
// Device text is untrusted: markup in it must show as text, never as elements.
const EVENT_TEXT = '3F 东侧走廊 <b>感烟探测器</b>'

let t: TestApp
let base: string
let redis: Redis
let profileDir: string
let context: BrowserContext
let page: Page
let panel: { id: string; secret: string; unitId: string }
let device: mqtt.MqttClient
const problems: string[] = []
let seq = 0

async function root<T = Record<string, unknown>>(method: string, p: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, p, body)
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** Publish with QoS 1; resolves on the PUBACK, i.e. once the message is in the ingest log. */
async function publish(leaf: 'events' | 'telemetry' | 'status', payload: unknown, retain = false): Promise<number> {
  const sentAt = Date.now()
  await device.publishAsync(`v1/devices/${panel.id}/${leaf}`, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1, retain })
  return sentAt
}

/** A trouble alert in the second unit, raised directly (the rule engine is not what these tests are about). */
const raiseTrouble = async (ruleId: string): Promise<Alert> =>
  (await t.app.alerts.raise({ unitId: UNITS[1].id, deviceId: '', point: '', ruleId, class: 'trouble', troubleType: 'fault', severity: 'minor', title: ruleId, detail: {}, at: new Date() })).alert

beforeAll(async () => {
  execFileSync('bash', ['scripts/chromium.sh'], { stdio: 'inherit' })
  t = await startTestApp(undefined, { RULE_ENGINE: 'true' })
  base = `http://127.0.0.1:${t.httpPort}`
  redis = new Redis(REDIS_URL)
  await root('POST', '/api/v1/jurisdictions', { id: CITY, name: '测试市', level: 'city' })
  await root('POST', '/api/v1/jurisdictions', { id: DISTRICT, parentId: CITY, name: '测试区', level: 'district' })
  for (const u of UNITS) {
    await root('POST', '/api/v1/units', { ...u, jurisdictionId: DISTRICT, contactName: '消防安全管理人', contactPhone: '0571-0000000' })
  }
  panel = await provisionAt(t.api, 'alarm_panel', UNITS[0].id)
  await root('POST', '/api/v1/users', { ...OPERATOR, role: 'operator', jurisdictionId: DISTRICT })
  // Something else on the screen, as on a real shift: a trouble and a supervisory alert in the other unit.
  for (const [cls, title, titleZh, severity] of [
    ['trouble', 'Device fault', '设备故障', 'minor'],
    ['supervisory', 'Supervisory signal', '监管报警', 'major']
  ] as const) {
    await t.app.alerts.raise({ unitId: UNITS[1].id, deviceId: '', point: '', ruleId: `console-${cls}`, class: cls, troubleType: cls === 'trouble' ? 'fault' : null, severity, title, detail: { titleZh }, at: new Date() })
  }

  device = await mqtt.connectAsync(t.mqttUrl, { clientId: panel.id, username: panel.id, password: panel.secret, reconnectPeriod: 0 })
  // Readings for the device page's chart, and a first message through the rule engine, so the timed one below
  // measures the path, not the engine's start-up.
  const now = Date.now()
  const sentAt = await publish('telemetry', Array.from({ length: 30 }, (_, i) => ({ ts: now - (30 - i) * 60_000, seq: ++seq, values: { main_power_v: 220 + (i % 5), backup_battery_v: 26 - i * 0.02 } })))
  await waitFor(async () => Number(await redis.zscore(`${t.app.config.redisPrefix}rules:heard`, panel.id)) >= sentAt, 20_000)

  profileDir = await mkdtemp(path.join(tmpdir(), 'fw-chromium-'))
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 810 },
    locale: 'zh-CN'
  })
  page = context.pages()[0] ?? (await context.newPage())
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`)
  })
}, 300_000)

afterAll(async () => {
  await context?.close()
  if (profileDir) await rm(profileDir, { recursive: true, force: true })
  await device?.endAsync().catch(() => undefined)
  redis?.disconnect()
  await t?.dispose()
})

describe('the web console', () => {
  it('is served by the server with a strict Content-Security-Policy, and / leads to it', async () => {
    const res = await fetch(`${base}/console/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(await res.text()).not.toMatch(/<script>|https?:\/\//)
    const redirect = await fetch(`${base}/`, { redirect: 'manual' })
    expect(redirect.headers.get('location')).toBe('/console/')
    expect((await fetch(`${base}/console/vendor/uplot/uPlot.esm.js`)).status).toBe(200)
    expect((await fetch(`${base}/console/vendor/uplot/package.json`)).status).toBe(404)
    expect((await fetch(`${base}/console`, { redirect: 'manual' })).headers.get('location')).toBe('/console/')
  })

  it('shows a fire alarm within 1 s of the publish acknowledgement; ack and resolve as false alarm are recorded with the operator', async () => {
    await page.goto(`${base}/console/`)
    await page.fill('input[name=username]', OPERATOR.username)
    await page.fill('input[name=password]', OPERATOR.password)
    await page.click('button[type=submit]')
    await page.locator('#live-state.live-live').waitFor({ timeout: 10_000 })
    await page.locator('tr.alert[data-class=supervisory]').waitFor()

    const acked = await publish('events', { ts: Date.now(), seq: ++seq, type: 'fire', point: '1-03-021', text: EVENT_TEXT })
    const pubAckAt = Date.now()
    const row = page.locator('tr.alert[data-class=fire]')
    await row.waitFor({ state: 'visible', timeout: 5000 })
    const latency = Date.now() - pubAckAt
    expect(latency, `fire alarm visible ${latency} ms after the PUBACK (published at ${acked})`).toBeLessThan(1000)

    // It stands out: first row, the banner, the unit's name; the device text is shown as text.
    await expect(page.locator('tr.alert').first().getAttribute('data-class')).resolves.toBe('fire')
    await expect(page.locator('.fire-banner').textContent()).resolves.toContain(UNITS[0].name)
    await expect(row.locator('td.title').textContent()).resolves.toContain(EVENT_TEXT)
    expect(await row.locator('b').count()).toBe(0)
    await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT ?? path.join(profileDir, 'console.png') })

    const id = (await row.getAttribute('data-alert-id'))!
    await row.locator('button.ack').click()
    await page.locator(`tr.alert[data-alert-id="${id}"][data-status=acknowledged]`).waitFor()
    await page.locator(`tr.alert[data-alert-id="${id}"] button.resolve`).click()
    await page.fill('tr.resolve-row input.comment', '现场核实：厨房油烟')
    await page.click('tr.resolve-row button[data-disposition=false_alarm]')
    await page.locator(`tr.alert[data-alert-id="${id}"]`).waitFor({ state: 'detached' })
    await expect(page.locator('.fire-banner').count()).resolves.toBe(0)

    const alert = await root<Alert & { transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${id}`)
    expect(alert).toMatchObject({ class: 'fire', status: 'resolved', disposition: 'false_alarm', resolutionComment: '现场核实：厨房油烟' })
    const steps = alert.transitions.filter((s) => s.action === 'acknowledged' || s.action === 'resolved')
    expect(steps.map((s) => [s.action, s.actor])).toEqual([
      ['acknowledged', OPERATOR.username],
      ['resolved', OPERATOR.username]
    ])
  })

  it('confirms a fire as real and resolves it so, recorded with the operator', async () => {
    const fire = (await t.app.alerts.raise({ unitId: UNITS[0].id, deviceId: '', point: '', ruleId: 'console-real', class: 'fire', troubleType: null, severity: 'critical', title: 'real', detail: {}, at: new Date() })).alert
    const row = `tr.alert[data-alert-id="${fire.id}"]`
    await page.locator(`${row} button.confirm`).click()
    await page.locator(`${row}[data-confirmed=yes]`).waitFor()
    await page.locator(`${row} button.resolve`).click()
    await page.click('tr.resolve-row button[data-disposition=real_fire]')
    await page.locator(row).waitFor({ state: 'detached' })
    const alert = await root<Alert & { transitions: AlertTransition[] }>('GET', `/api/v1/alerts/${fire.id}`)
    expect(alert).toMatchObject({ status: 'resolved', disposition: 'real_fire', confirmedBy: OPERATOR.username, resolvedBy: OPERATOR.username })
  })

  it('ranks units by risk, shows a unit with its devices and a device with its readings chart', async () => {
    await page.goto(`${base}/console/#risk`)
    const first = page.locator('table.risk tbody tr').first()
    await first.waitFor()
    await expect(page.locator('table.risk tbody tr').count()).resolves.toBe(2)
    await page.locator(`table.risk a[href="#units/${UNITS[0].id}"]`).click()
    await page.locator(`table.devices tr[data-device-id="${panel.id}"] .state.on`).waitFor()
    await expect(page.locator('table.events').textContent()).resolves.toContain(EVENT_TEXT)
    // An alert arriving meanwhile shows in the header and leaves the page alone.
    const fire = (await t.app.alerts.raise({ unitId: UNITS[1].id, deviceId: '', point: '', ruleId: 'console-away', class: 'fire', troubleType: null, severity: 'critical', title: 'away', detail: {}, at: new Date() })).alert
    await page.locator('nav .pill >> text=1').waitFor()
    expect(await page.locator('table.devices').count()).toBe(1)
    await root('POST', `/api/v1/alerts/${fire.id}/resolve`, { disposition: 'test' })
    await page.locator('nav .pill').waitFor({ state: 'detached' })
    await page.locator(`table.devices a[href="#devices/${panel.id}"]`).click()
    await page.locator('.chart[data-metric=main_power_v] canvas').waitFor()
    await page.click('button.range >> text=24h')
    await page.locator('button.range.on >> text=24h').waitFor()
    await page.locator('.chart[data-metric=backup_battery_v] canvas').waitFor()
  })

  it('shows the ranking a page at a time, with a control for more', async () => {
    // 150 more units in the operator's district, scored 0 so they rank after the two above.
    const pool = t.app.risk.deps.pool
    await pool.query(
      `INSERT INTO units (id, jurisdiction_id, name, address, category, contact_name, contact_phone)
       SELECT 'console-extra-' || lpad(i::text, 3, '0'), $1, '附加单位 ' || i, '测试路 ' || i || ' 号', 'general', '管理人', '0571-0000000' FROM generate_series(1, 150) i`,
      [DISTRICT]
    )
    await pool.query(`INSERT INTO unit_risk (unit_id, score, level, factors, computed_at) SELECT id, 0, 'low', '[]', now() FROM units WHERE id LIKE 'console-extra-%'`)
    try {
      await page.goto(`${base}/console/#risk`)
      await page.locator('button.more').waitFor()
      expect(await page.locator('table.risk tbody tr').count()).toBe(100)
      await expect(page.locator('.risk-more').textContent()).resolves.toContain('100 / 152')
      await page.click('button.more')
      await page.locator('button.more').waitFor({ state: 'detached' })
      expect(await page.locator('table.risk tbody tr').count()).toBe(152)
      const ids = await page.locator('table.risk tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-unit-id')))
      expect(new Set(ids).size).toBe(152)
      expect(ids.slice(0, 2).sort()).toEqual(UNITS.map((u) => u.id).sort())
    } finally {
      await pool.query(`DELETE FROM unit_risk WHERE unit_id LIKE 'console-extra-%'`)
      await pool.query(`DELETE FROM units WHERE id LIKE 'console-extra-%'`)
    }
  })

  it('follows the live channel across a reconnect: resumes from the last event id; on reset reloads from the REST API', async () => {
    const urls: string[] = []
    let current: WebSocketRoute | null = null
    // What the next connection does once `gate` resolves: pass through to the server, or play one that lost history.
    let mode: 'pass' | 'reset' = 'pass'
    let gate: Promise<unknown> = Promise.resolve()
    await page.routeWebSocket(/\/api\/v1\/live/, async (ws) => {
      urls.push(ws.url())
      current = ws
      await gate
      if (mode === 'reset') {
        ws.send(JSON.stringify({ type: 'reset', reason: 'history trimmed' }))
        ws.send(JSON.stringify({ type: 'ready', eventId: '1-0' }))
        return
      }
      ws.connectToServer()
    })
    // A new document, so its socket goes through the route (a hash change keeps the page and its socket).
    await page.goto(`${base}/console/#alerts`)
    await page.reload()
    await page.locator('#live-state.live-live').waitFor()
    expect(urls).toHaveLength(1)

    // Cut the socket; the alert raised while it is down reaches the server only after the console reconnected.
    let raised!: (a: Alert) => void
    gate = new Promise<Alert>((resolve) => (raised = resolve))
    await current!.close({ code: 4000, reason: 'test cut' })
    await page.locator('#live-state.live-offline, #live-state.live-connecting').waitFor()
    const missed = await raiseTrouble('console-missed')
    raised(missed)
    await page.locator(`tr.alert[data-alert-id="${missed.id}"]`).waitFor({ timeout: 5000 })
    expect(new URL(urls.at(-1)!).searchParams.get('lastEventId')).toMatch(/^\d+-\d+$/)

    // A server that cannot resume says `reset`: the console reloads the list over REST.
    mode = 'reset'
    gate = new Promise<Alert>((resolve) => (raised = resolve))
    const cut = urls.length
    await current!.close({ code: 4000, reason: 'test cut' })
    const later = await raiseTrouble('console-after-reset')
    raised(later)
    await waitFor(async () => urls.length > cut, 5000)
    await page.locator(`tr.alert[data-alert-id="${later.id}"]`).waitFor({ timeout: 5000 })
    await page.locator('header .notice').waitFor()
    mode = 'pass'
  })

  it('refreshes a rejected access token once, though several calls were refused together, and carries on', async () => {
    const before = problems.length
    // (A string: this runs in the page, whose globals the test's TypeScript does not know.)
    await page.evaluate(`{
      const s = JSON.parse(sessionStorage.getItem('firewatch.session'))
      s.accessToken = 'no-longer-valid'
      sessionStorage.setItem('firewatch.session', JSON.stringify(s))
    }`)
    await page.reload()
    await page.locator('#live-state.live-live').waitFor()
    await page.locator('tr.alert').first().waitFor()
    // A refresh token works once: had two refreshes raced with the same one, the session would have ended.
    const alert = await raiseTrouble('console-after-refresh')
    await page.locator(`tr.alert[data-alert-id="${alert.id}"]`).waitFor()
    await expect(page.locator('form.login').count()).resolves.toBe(0)
    // The browser logs the refused calls themselves; nothing else went wrong.
    for (const p of problems.splice(before)) expect(p).toContain('status of 401')
  })

  it('switches to English and remembers it across a reload, still logged in', async () => {
    await page.goto(`${base}/console/#alerts`)
    await page.locator('#lang').click()
    await page.locator('nav a[href="#alerts"] >> text=Live alerts').waitFor()
    await page.reload()
    await page.locator('nav a[href="#alerts"] >> text=Live alerts').waitFor()
    await page.locator('#lang').click()
    await page.locator('nav a[href="#alerts"] >> text=实时告警').waitFor()
    expect(problems).toEqual([])
  })
})
