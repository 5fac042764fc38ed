/**
 * Webhooks end to end against real receivers: a unit's notification reaches the webhooks of its jurisdiction and
 * classes only, signed with the documented algorithm (verified here by an implementation of its own); a receiver
 * that keeps failing gets a bounded number of attempts, then the delivery is a dead letter an administrator sees and
 * sends again; bodies are validated naming the field.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { startTestApp, waitFor, type TestApp } from './helpers/env.js'
import { deliver } from '../src/notifications/http-delivery.js'
import { Receiver } from './helpers/receiver.js'
import type { Webhook } from '../schemas/webhooks.js'

type Created = Webhook & { secret: string }
type Reply = { code: string; message: string; field?: string }
interface Payload {
  type: string
  deliveryId: string
  webhookId: string
  unitId: string
  items: { alertId: string; class: string; change: string }[]
  byClass: Record<string, number>
}

let t: TestApp
const ok = new Receiver()
const failing = new Receiver()
let okUrl: string
let failingUrl: string
const units: Record<'A' | 'B', string> = { A: '', B: '' }
let seq = 0

beforeAll(async () => {
  okUrl = `http://127.0.0.1:${await ok.start()}/hooks/firewatch`
  failingUrl = `http://127.0.0.1:${await failing.start()}/down`
  failing.otherwise = 503
  t = await startTestApp(undefined, { RULE_ENGINE: 'true', NOTIFY_INTERVAL_MS: '100', WEBHOOK_ATTEMPTS: '3', WEBHOOK_BACKOFF_MS: '100', WEBHOOK_TIMEOUT_MS: '1000' })
  const tag = `${process.pid}`
  await t.api('POST', '/api/v1/jurisdictions', { id: `wh-city-${tag}`, name: 'City', level: 'city' })
  for (const side of ['A', 'B'] as const) {
    const district = `wh-${side.toLowerCase()}-${tag}`
    await t.api('POST', '/api/v1/jurisdictions', { id: district, parentId: `wh-city-${tag}`, name: `District ${side}`, level: 'district' })
    const unit = await t.api<{ id: string }>('POST', '/api/v1/units', {
      id: `wh-unit-${side.toLowerCase()}-${tag}`,
      jurisdictionId: district,
      name: `Mall ${side}`,
      address: '1 Test Road',
      category: 'high_risk',
      contactName: 'Duty Manager',
      contactPhone: '0571-0000000'
    })
    units[side] = unit.body.id
  }
})
afterAll(async () => {
  await t?.dispose()
  await ok.stop()
  await failing.stop()
})

const district = (side: 'A' | 'B') => `wh-${side.toLowerCase()}-${process.pid}`
const raise = (unitId: string, cls: 'fire' | 'trouble') =>
  t.app.alerts.raise({
    unitId,
    deviceId: 'panel-1',
    point: `p-${++seq}`,
    ruleId: `${cls}_event`,
    class: cls,
    troubleType: cls === 'trouble' ? 'fault' : null,
    severity: cls === 'fire' ? 'critical' : 'minor',
    title: `${cls} at point ${seq}`,
    detail: {},
    at: new Date()
  })
const create = (body: Record<string, unknown>) => t.api<Created>('POST', '/api/v1/webhooks', body)
const payloads = (r: Receiver, webhookId: string) => r.requests.map((q) => ({ q, p: JSON.parse(q.body) as Payload })).filter((x) => x.p.webhookId === webhookId)

/** The documented algorithm, written out again: t=<ms>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")). */
function verify(secret: string, header: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header)
  if (!m) return false
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${m[1]}.${body}`, 'utf8').digest()
  return timingSafeEqual(mac, Buffer.from(m[2]!, 'hex')) && Math.abs(Date.now() - Number(m[1])) < 300_000
}

describe('delivery', () => {
  it("delivers a unit's notifications of the subscribed classes, signed, to the webhooks of its jurisdiction only", async () => {
    const a = await create({ name: 'district A fire', url: okUrl, jurisdictionId: district('A'), classes: ['fire'] })
    expect(a.status).toBe(201)
    expect(a.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/)
    const b = await create({ name: 'district B everything', url: okUrl, jurisdictionId: district('B'), classes: ['fire', 'trouble'] })
    expect(b.status).toBe(201)
    // The secret is shown once.
    expect((await t.api<Record<string, unknown>>('GET', `/api/v1/webhooks/${a.body.id}`)).body).not.toHaveProperty('secret')

    const trouble = (await raise(units.A, 'trouble')).alert
    const fire = (await raise(units.A, 'fire')).alert
    const got = await ok.waitFor((q) => (JSON.parse(q.body) as Payload).items.some((i) => i.alertId === fire.id))
    const p = JSON.parse(got.body) as Payload
    expect(p).toMatchObject({ type: 'notification', webhookId: a.body.id, unitId: units.A, byClass: { fire: 1 } })
    expect(p.items.map((i) => i.class)).toEqual(['fire'])
    expect(got.headers['x-firewatch-delivery']).toBe(p.deliveryId)
    expect(got.headers['x-firewatch-event']).toBe('notification')
    expect(verify(a.body.secret, String(got.headers['x-firewatch-signature']), got.body)).toBe(true)
    expect(verify(b.body.secret, String(got.headers['x-firewatch-signature']), got.body)).toBe(false)

    // District A's trouble reached no webhook (A's takes fire only, B's is elsewhere); B's fire reaches B's only.
    const fireB = (await raise(units.B, 'fire')).alert
    await ok.waitFor((q) => (JSON.parse(q.body) as Payload).items.some((i) => i.alertId === fireB.id))
    await new Promise((r) => setTimeout(r, 500))
    expect(ok.requests.some((q) => (JSON.parse(q.body) as Payload).items.some((i) => i.alertId === trouble.id))).toBe(false)
    expect(payloads(ok, b.body.id).every((x) => x.p.unitId === units.B)).toBe(true)
    expect(payloads(ok, a.body.id).every((x) => x.p.unitId === units.A)).toBe(true)

    // Disabled: nothing more.
    expect((await t.api('PATCH', `/api/v1/webhooks/${a.body.id}`, { enabled: false })).status).toBe(200)
    const before = payloads(ok, a.body.id).length
    const later = (await raise(units.A, 'fire')).alert
    await new Promise((r) => setTimeout(r, 1000))
    expect(payloads(ok, a.body.id)).toHaveLength(before)
    expect(ok.requests.some((q) => (JSON.parse(q.body) as Payload).items.some((i) => i.alertId === later.id))).toBe(false)
    await t.api('DELETE', `/api/v1/webhooks/${b.body.id}`)
  })

  it('dead-letters a delivery that keeps failing after its attempts, shows it to the admin and sends it again', async () => {
    const w = await create({ name: 'flaky receiver', url: failingUrl, jurisdictionId: district('A'), classes: ['fire'] })
    expect(w.status).toBe(201)
    const fire = (await raise(units.A, 'fire')).alert
    type Dead = { id: string; webhookId: string; deliveryId: string; attempts: number; lastStatus: number | null; lastError: string; body: string }
    const dead = await waitFor(async () => {
      const r = await t.api<{ items: Dead[]; total: number }>('GET', `/api/v1/webhooks/dead-letters?webhookId=${w.body.id}`)
      return r.body.items[0]
    }, 20_000)
    expect(dead).toMatchObject({ webhookId: w.body.id, attempts: 3, lastStatus: 503, lastError: 'answered 503' })
    expect(JSON.parse(dead.body).items[0].alertId).toBe(fire.id)
    // WEBHOOK_ATTEMPTS bounds the attempts: three, each with the same delivery id.
    const tried = payloads(failing, w.body.id)
    expect(tried).toHaveLength(3)
    expect(new Set(tried.map((x) => x.q.headers['x-firewatch-delivery']))).toEqual(new Set([dead.deliveryId]))

    // Not while the webhook is disabled: the delivery would be dropped instead of kept.
    expect((await t.api('PATCH', `/api/v1/webhooks/${w.body.id}`, { enabled: false })).status).toBe(200)
    expect(await t.api('POST', `/api/v1/webhooks/dead-letters/${dead.id}/retry`)).toMatchObject({ status: 409, body: { code: 'FW_ERR_CONFLICT' } })
    expect((await t.api('PATCH', `/api/v1/webhooks/${w.body.id}`, { enabled: true })).status).toBe(200)

    // The receiver is fixed: sent again, same delivery id and body, and the dead letter leaves the list.
    failing.otherwise = 200
    const retry = await t.api<{ deliveryId: string }>('POST', `/api/v1/webhooks/dead-letters/${dead.id}/retry`)
    expect(retry).toMatchObject({ status: 202, body: { deliveryId: dead.deliveryId } })
    const again = await failing.waitFor((q) => q.status === 200 && q.headers['x-firewatch-delivery'] === dead.deliveryId)
    expect(again.body).toBe(dead.body)
    expect(verify(w.body.secret, String(again.headers['x-firewatch-signature']), again.body)).toBe(true)
    expect((await t.api<{ total: number }>('GET', `/api/v1/webhooks/dead-letters?webhookId=${w.body.id}`)).body.total).toBe(0)
    await waitFor(async () => /firewatch_webhook_deliveries_total\{outcome="dead_lettered"\} [1-9]/.test(await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text()))
  })

  it('does not let a receiver that stopped answering hold up the other webhooks', async () => {
    const silent = new Receiver()
    silent.stall = 1_000_000
    const silentUrl = `http://127.0.0.1:${await silent.start()}/hangs`
    try {
      // A dead integrator subscribed many times over (or many dead ones): each delivery waits WEBHOOK_TIMEOUT_MS (1 s).
      const ids: string[] = []
      for (let i = 0; i < 20; i++) ids.push((await create({ name: `hangs ${i}`, url: silentUrl, jurisdictionId: district('A'), classes: ['fire'] })).body.id)
      const healthy = await create({ name: 'healthy', url: okUrl, jurisdictionId: district('A'), classes: ['fire'] })
      ids.push(healthy.body.id)
      const raised = Date.now()
      const fire = (await raise(units.A, 'fire')).alert
      const got = await ok.waitFor((q) => (JSON.parse(q.body) as Payload).webhookId === healthy.body.id && (JSON.parse(q.body) as Payload).items.some((i) => i.alertId === fire.id))
      // Had it waited behind a silent receiver, it would have come only after that delivery's WEBHOOK_TIMEOUT_MS (1 s),
      // which starts after the raise: arriving within 1 s of the raise means it waited for none of them.
      expect(got.at - raised).toBeLessThan(1000)
      for (const id of ids) await t.api('DELETE', `/api/v1/webhooks/${id}`)
    } finally {
      await silent.stop()
    }
  })

  it('keeps a delivery out of attempts as a dead letter although PostgreSQL refused it at that moment', async () => {
    failing.otherwise = 503
    const w = await create({ name: 'down while the database is', url: failingUrl, jurisdictionId: district('A'), classes: ['fire'] })
    const db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${t.names.database}` })
    await db.connect()
    try {
      // The dead letters' table is away (a failover, a lock timeout): recording the last attempt's failure fails.
      await db.query('ALTER TABLE webhook_dead_letters RENAME TO webhook_dead_letters_away')
      await raise(units.A, 'fire')
      await waitFor(async () => payloads(failing, w.body.id).length >= 3, 20_000)
      await new Promise((r) => setTimeout(r, 700))
    } finally {
      await db.query('ALTER TABLE webhook_dead_letters_away RENAME TO webhook_dead_letters')
      await db.end()
    }
    const dead = await waitFor(async () => (await t.api<{ items: { attempts: number; lastStatus: number }[] }>('GET', `/api/v1/webhooks/dead-letters?webhookId=${w.body.id}`)).body.items[0], 15_000)
    expect(dead).toMatchObject({ attempts: 3, lastStatus: 503 })
    await t.api('DELETE', `/api/v1/webhooks/${w.body.id}`)
  })

  it('never puts a password of the URL in the error it records and logs', async () => {
    const r = await deliver({ url: `${okUrl.replace('http://', 'http://user:pa55@')}`, secret: 's', deliveryId: 'd', event: 'notification', body: '{}', timeoutMs: 1000 })
    expect(r.ok).toBe(false)
    expect(JSON.stringify(r)).not.toContain('pa55')
  })

  it('sends a dead letter again once however many retries race, and lists it again when it fails again', async () => {
    failing.otherwise = 503
    const w = await create({ name: 'still down', url: failingUrl, jurisdictionId: district('A'), classes: ['fire'] })
    await raise(units.A, 'fire')
    type Dead = { id: string; deliveryId: string; attempts: number }
    const listed = async () => (await t.api<{ items: Dead[] }>('GET', `/api/v1/webhooks/dead-letters?webhookId=${w.body.id}`)).body.items
    const dead = await waitFor(async () => (await listed())[0], 20_000)
    const sent = () => payloads(failing, w.body.id).length
    expect(sent()).toBe(3)

    // An operator double-clicks (or two admins click): one retry, not one per click.
    const replies = await Promise.all([1, 2, 3, 4].map(() => t.api('POST', `/api/v1/webhooks/dead-letters/${dead.id}/retry`)))
    expect(replies.map((r) => r.status).sort()).toEqual([202, 404, 404, 404])
    // It fails again: back on the list after exactly one more round of attempts.
    const back = await waitFor(async () => (await listed()).find((d) => d.deliveryId === dead.deliveryId), 20_000)
    expect(back).toMatchObject({ attempts: 3 })
    await new Promise((r) => setTimeout(r, 500))
    expect(sent()).toBe(6)
    expect(await listed()).toHaveLength(1)
    await t.api('DELETE', `/api/v1/webhooks/${w.body.id}`)
  })
})

describe('the API', () => {
  it('creates, lists, reads, changes and deletes a webhook', async () => {
    const c = await create({ name: 'ops', url: okUrl, jurisdictionId: district('B'), classes: ['trouble', 'supervisory'] })
    expect(c.body).toMatchObject({ name: 'ops', url: okUrl, jurisdictionId: district('B'), classes: ['trouble', 'supervisory'], enabled: true, createdBy: 'root' })
    const listed = await t.api<{ items: Webhook[] }>('GET', '/api/v1/webhooks')
    expect(listed.body.items.map((w) => w.id)).toContain(c.body.id)
    const patched = await t.api<Webhook>('PATCH', `/api/v1/webhooks/${c.body.id}`, { classes: ['fire'], name: 'ops fire' })
    expect(patched.body).toMatchObject({ classes: ['fire'], name: 'ops fire', url: okUrl })
    expect((await t.api('DELETE', `/api/v1/webhooks/${c.body.id}`)).status).toBe(204)
    expect((await t.api('GET', `/api/v1/webhooks/${c.body.id}`)).status).toBe(404)
    expect((await t.api('DELETE', `/api/v1/webhooks/${c.body.id}`)).status).toBe(404)

    // Each step is on the audit trail, without the secret and with only the URL's host.
    type Entry = { action: string; actor: string; jurisdictionId: string | null; detail: Record<string, unknown> }
    const trail = await t.api<{ items: Entry[] }>('GET', `/api/v1/audit?subjectKind=webhook&subjectId=${c.body.id}`)
    expect(trail.body.items.map((e) => e.action).reverse()).toEqual(['webhook.created', 'webhook.changed', 'webhook.deleted'])
    expect(trail.body.items.every((e) => e.actor === 'root' && e.jurisdictionId === district('B'))).toBe(true)
    expect(trail.body.items.find((e) => e.action === 'webhook.changed')!.detail).toMatchObject({ changed: ['classes', 'name'], host: new URL(okUrl).host })
    expect(JSON.stringify(trail.body.items)).not.toContain(c.body.secret)
    expect(JSON.stringify(trail.body.items)).not.toContain('/hooks/firewatch')
  })

  const valid = () => ({ name: 'x', url: 'https://example.test/hook', jurisdictionId: district('A'), classes: ['fire'] })
  const bad: [string, Record<string, unknown>, string][] = [
    ['a URL that is not http(s)', { ...valid(), url: 'ftp://example.test/x' }, 'url'],
    ['no URL', { ...valid(), url: undefined }, 'url'],
    ['a URL with a password', { ...valid(), url: 'https://user:pa55@example.test/hook?at=x@y' }, 'url'],
    ['no classes', { ...valid(), classes: [] }, 'classes'],
    ['the test class', { ...valid(), classes: ['test'] }, 'classes.0'],
    ['an unknown jurisdiction', { ...valid(), jurisdictionId: 'nowhere' }, 'jurisdictionId'],
    ['an extra property', { ...valid(), secret: 'mine' }, 'secret']
  ]
  for (const [what, body, field] of bad) {
    it(`answers 400 naming ${field} for ${what}`, async () => {
      const r = await t.api<Reply>('POST', '/api/v1/webhooks', JSON.parse(JSON.stringify(body)))
      expect(r).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', field } })
    })
  }

  it('is described in the OpenAPI document', async () => {
    const doc = (await (await fetch(`http://127.0.0.1:${t.httpPort}/docs/json`)).json()) as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[] } }> } }>> }
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/webhooks', '/api/v1/webhooks/{id}', '/api/v1/webhooks/dead-letters', '/api/v1/webhooks/dead-letters/{id}/retry']))
    expect(doc.paths['/api/v1/webhooks']!.post!.requestBody!.content['application/json']!.schema.required).toEqual(expect.arrayContaining(['url', 'classes', 'jurisdictionId']))
  })

  it('answers 400 naming the field for a bad change', async () => {
    const c = await create(valid())
    expect(await t.api('PATCH', `/api/v1/webhooks/${c.body.id}`, { enabled: 'sometimes' })).toMatchObject({ status: 400, body: { field: 'enabled' } })
    expect(await t.api('PATCH', `/api/v1/webhooks/${c.body.id}`, {})).toMatchObject({ status: 400 })
  })
})
