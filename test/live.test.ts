/**
 * The live channel (WebSocket /api/v1/live): alert and device changes within the caller's scope, at once; resume from
 * the last event id without a gap or a duplicate; refusals as close codes; the keep-alive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { ADMIN_TOKEN, REDIS_URL, ROOT_USER, loginAt, startTestApp, type TestApp } from './helpers/env.js'
import { LiveClient, type LiveMessage } from './helpers/live-client.js'
import type { Alert } from '../schemas/alerts.js'

let t: TestApp
let base: string
let redis: Redis
const token = {} as Record<'root' | 'operatorA', string>
let apiKeyA: string

type Side = 'A' | 'B'
const UNIT: Record<Side, string> = { A: 'live-unit-a', B: 'live-unit-b' }
const DEVICE = {} as Record<Side, { id: string; secret: string }>
let seq = 0

async function root<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await t.api<T>(method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

const raise = async (side: Side): Promise<Alert> =>
  (
    await t.app.alerts.raise({
      unitId: UNIT[side],
      deviceId: '',
      point: '',
      ruleId: `live-${++seq}`,
      class: 'trouble',
      troubleType: 'fault',
      severity: 'minor',
      title: `live test alert ${side}`,
      detail: {},
      at: new Date()
    })
  ).alert

const isAlert = (id: string) => (m: LiveMessage) => m.type === 'alert' && (m.alert as Alert).id === id
const isDevice = (deviceId: string, online: boolean) => (m: LiveMessage) => m.type === 'device' && m.deviceId === deviceId && m.online === online
/** Nothing of B anywhere in what a client of A got. */
const mentionsB = (messages: LiveMessage[]) => messages.some((m) => JSON.stringify(m).includes(UNIT.B) || JSON.stringify(m).includes(DEVICE.B.id))

const connectDevice = (side: Side) =>
  mqtt.connectAsync(t.mqttUrl, { clientId: DEVICE[side].id, username: DEVICE[side].id, password: DEVICE[side].secret, reconnectPeriod: 0 })

/** The unit of a stream entry's message (alert or device change). */
const unitOf = (m: LiveMessage) => (m.type === 'alert' ? (m.alert as Alert).unitId : (m.unitId as string))

beforeAll(async () => {
  t = await startTestApp()
  base = `http://127.0.0.1:${t.httpPort}`
  redis = new Redis(REDIS_URL)
  await root('POST', '/api/v1/jurisdictions', { id: 'live-city', name: 'Live City', level: 'city' })
  for (const side of ['A', 'B'] as const) {
    const district = `live-district-${side.toLowerCase()}`
    await root('POST', '/api/v1/jurisdictions', { id: district, parentId: 'live-city', name: `District ${side}`, level: 'district' })
    await root('POST', '/api/v1/units', {
      id: UNIT[side],
      jurisdictionId: district,
      name: `Unit ${side}`,
      address: `${side} Road 1`,
      category: 'key',
      contactName: 'Duty Manager',
      contactPhone: '0571-0000000'
    })
    const d = await root<{ id: string; secret: string }>('POST', '/api/v1/devices', { id: `live-device-${side.toLowerCase()}`, unitId: UNIT[side], kind: 'smoke_detector' })
    DEVICE[side] = { id: d.id, secret: d.secret }
  }
  await root('POST', '/api/v1/users', { username: 'live-operator-a', displayName: 'Operator A', password: 'operator-a-password-1', role: 'operator', jurisdictionId: 'live-district-a' })
  token.operatorA = (await loginAt(base, 'live-operator-a', 'operator-a-password-1')).accessToken
  token.root = (await loginAt(base, ROOT_USER.username, ROOT_USER.password)).accessToken
  apiKeyA = (await root<{ key: string }>('POST', '/api/v1/api-keys', { name: 'live-key-a', role: 'viewer', jurisdictionId: 'live-district-a' })).key
})
afterAll(async () => {
  redis?.disconnect()
  await t?.dispose()
})

describe('the live channel', () => {
  it("sends an operator of A A's alert change within a second and never B's; the root administrator gets both, in order", async () => {
    const operator = await LiveClient.open(t.httpPort, token.operatorA)
    const admin = await LiveClient.open(t.httpPort, token.root)
    const b = await raise('B')
    const started = Date.now()
    const a = await raise('A')
    const got = await operator.next(isAlert(a.id), 1000)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(got).toMatchObject({ type: 'alert', change: 'opened', alert: { id: a.id, unitId: UNIT.A } })
    expect(got.eventId).toMatch(/^\d+-\d+$/)

    await admin.next(isAlert(a.id), 1000)
    const order = [b.id, a.id].map((id) => admin.messages.findIndex(isAlert(id)))
    expect(order[0]).toBeGreaterThanOrEqual(0)
    expect(order[0]).toBeLessThan(order[1]!)
    // B's change was published first: had it been sent to the operator, it would be there already.
    expect(operator.messages.some(isAlert(b.id))).toBe(false)
    expect(mentionsB(operator.messages)).toBe(false)
    await operator.close()
    await admin.close()
  })

  it('sends device state changes in scope: online on connect, offline on disconnect', async () => {
    const operator = await LiveClient.open(t.httpPort, token.operatorA)
    const admin = await LiveClient.open(t.httpPort, token.root)
    const b = await connectDevice('B')
    await admin.next(isDevice(DEVICE.B.id, true))
    const a = await connectDevice('A')
    const online = await operator.next(isDevice(DEVICE.A.id, true))
    expect(online).toMatchObject({ type: 'device', deviceId: DEVICE.A.id, unitId: UNIT.A, online: true })
    expect(Date.parse(online.at as string)).not.toBeNaN()
    await a.endAsync()
    await operator.next(isDevice(DEVICE.A.id, false))
    await b.endAsync()
    await admin.next(isDevice(DEVICE.B.id, false))
    // A sentinel after B's changes: what B did would have reached the operator before it.
    const sentinel = await raise('A')
    await operator.next(isAlert(sentinel.id))
    expect(mentionsB(operator.messages)).toBe(false)
    // One message per change: no second "online" for the status the device may send, no second "offline" for its will.
    expect(operator.messages.filter((m) => m.type === 'device').map((m) => m.online)).toEqual([true, false])
    await operator.close()
    await admin.close()
  })

  it('resumes from lastEventId with exactly the in-scope changes missed, in order, then live', async () => {
    const first = await LiveClient.open(t.httpPort, token.operatorA)
    const seen = await raise('A')
    await first.next(isAlert(seen.id))
    const last = first.lastEventId()
    await first.close()

    const missed: Alert[] = []
    for (const side of ['A', 'B', 'A', 'B', 'A'] as const) {
      const alert = await raise(side)
      if (side === 'A') missed.push(alert)
    }
    const device = await connectDevice('A')
    await device.endAsync()

    const again = await LiveClient.open(t.httpPort, token.operatorA, last)
    const backlog = again.backlog()
    expect(backlog.map((m) => (m.type === 'alert' ? (m.alert as Alert).id : `${m.deviceId as string}:${String(m.online)}`))).toEqual([
      ...missed.map((a) => a.id),
      `${DEVICE.A.id}:true`,
      `${DEVICE.A.id}:false`
    ])
    expect(backlog.some(isAlert(seen.id))).toBe(false)
    // Ids strictly increase, the first after the one resumed from.
    const ids = [last, ...backlog.map((m) => m.eventId!)]
    for (let i = 1; i < ids.length; i++) expect(compareIds(ids[i]!, ids[i - 1]!), ids.join(' ')).toBe(1)
    // `ready` names the last event sent: where to resume from next time.
    expect(again.messages[backlog.length]).toEqual({ type: 'ready', eventId: backlog.at(-1)!.eventId })

    const live = await raise('A')
    await again.next(isAlert(live.id))
    expect(again.messages.filter(isAlert(live.id))).toHaveLength(1)
    await again.close()
  })

  it('has no gap and no duplicate between the stream read and the live messages while changes keep coming', async () => {
    const first = await LiveClient.open(t.httpPort, token.operatorA)
    const from = first.lastEventId() // `ready`'s position: nothing was sent yet
    await first.close()

    // Small pages: many reads, each waiting for the previous page to be written, while four writers keep raising.
    const page = t.app.liveHub.limits.page
    t.app.liveHub.limits.page = 3
    let stop = false
    const raised: Alert[] = []
    const raising = Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; !stop && i < 400; i++) raised.push(await raise((i + w) % 3 === 0 ? 'B' : 'A'))
      })
    ).finally(() => (t.app.liveHub.limits.page = page))
    await waitUntil(() => raised.length >= 40)
    const resumed = await LiveClient.open(t.httpPort, token.operatorA, from)
    await waitUntil(() => raised.length >= 120)
    stop = true
    await raising
    const sentinel = await raise('A')
    await resumed.next(isAlert(sentinel.id))

    // What the stream holds after `from`, in A: exactly what the client got, in the stream's order.
    const entries = (await redis.xrange(`${t.names.redisPrefix}live`, `(${from}`, '+')) as [string, string[]][]
    const expected = entries.map(([id, f]) => ({ id, m: JSON.parse(f[1]!) as LiveMessage })).filter((e) => unitOf(e.m) === UNIT.A).map((e) => e.id)
    const got = resumed.messages.filter((m) => m.type !== 'ready').map((m) => m.eventId)
    expect(got).toEqual(expected)
    // Both halves were exercised: a backlog before `ready`, live messages after it.
    expect(resumed.backlog().length).toBeGreaterThan(0)
    expect(resumed.messages.length - resumed.backlog().length - 1).toBeGreaterThan(1)
    expect(new Set(got).size).toBe(got.length)
    expect(mentionsB(resumed.messages)).toBe(false)
    await resumed.close()
  })

  it('sends a change published just before the stream read once, and one published just after it, too', async () => {
    const first = await LiveClient.open(t.httpPort, token.operatorA)
    const from = first.lastEventId()
    await first.close()
    const missed = await raise('A')

    // The hub's read of the stream, with a change published right before it (it reaches the socket both ways: the
    // read and the channel) and one right after it (through the channel only, while the socket still buffers).
    const observer = await LiveClient.open(t.httpPort, token.root)
    const hub = t.app.liveHub
    const read = hub.range.bind(hub)
    const around: Alert[] = []
    hub.range = async (after) => {
      if (around.length > 0) return read(after)
      around.push(await raise('A'))
      await observer.next(isAlert(around[0]!.id)) // routed by the hub: in the resuming socket's buffer too
      const items = await read(after)
      around.push(await raise('A'))
      await observer.next(isAlert(around[1]!.id))
      return items
    }
    try {
      const resumed = await LiveClient.open(t.httpPort, token.operatorA, from)
      await resumed.next(isAlert(around[1]!.id))
      const alerts = resumed.messages.filter((m) => m.type === 'alert').map((m) => (m.alert as Alert).id)
      expect(alerts).toEqual([missed.id, around[0]!.id, around[1]!.id])
      await resumed.close()
    } finally {
      hub.range = read
      await observer.close()
    }
  })

  it('catches up from the stream when the shared subscriber was cut off, without a duplicate', async () => {
    const c = await LiveClient.open(t.httpPort, token.operatorA)
    const subscriber = (t.app.liveHub as unknown as { subscriber: Redis }).subscriber
    const cut = new Promise((resolve) => subscriber.once('close', resolve))
    subscriber.disconnect(true) // and reconnect
    await cut
    expect(t.app.liveHub.attached).toBe(false)
    const during = await raise('A') // most likely published while this process hears nothing
    await c.next(isAlert(during.id))
    const after = await raise('A')
    await c.next(isAlert(after.id))
    expect(c.messages.filter((m) => m.type === 'alert').map((m) => (m.alert as Alert).id)).toEqual([during.id, after.id])
    expect(t.app.liveHub.attached).toBe(true)
    await c.close()
  })

  it('takes the token from an Authorization header too, and an API key', async () => {
    const byHeader = await LiveClient.connect(t.httpPort, {}, { headers: { authorization: `Bearer ${token.operatorA}` } })
    await byHeader.next((m) => m.type === 'ready')
    const byKey = await LiveClient.open(t.httpPort, apiKeyA)
    const a = await raise('A')
    await byHeader.next(isAlert(a.id))
    await byKey.next(isAlert(a.id))
    await byHeader.close()
    await byKey.close()
  })

  it('refuses missing and bad credentials with close code 4401, and sends nothing', async () => {
    const queries: Record<string, string>[] = [{}, { token: 'not-a-token' }, { token: ADMIN_TOKEN }, { token: `fwk_000000000000_${'a'.repeat(43)}` }]
    for (const query of queries) {
      const c = await LiveClient.connect(t.httpPort, query)
      const closed = await c.whenClosed()
      expect(closed.code, JSON.stringify(query)).toBe(4401)
      expect(closed.reason.length).toBeGreaterThan(0)
      expect(c.messages).toEqual([])
    }
  })

  it('closes with 4401 once the credentials are revoked (checked with the keep-alive)', async () => {
    const { key, apiKey } = await root<{ key: string; apiKey: { id: string } }>('POST', '/api/v1/api-keys', { name: 'live-revoked', role: 'viewer', jurisdictionId: 'live-district-a' })
    const c = await LiveClient.open(t.httpPort, key)
    await root('DELETE', `/api/v1/api-keys/${apiKey.id}`)
    t.app.liveHub.keepAlive(200)
    try {
      expect((await c.whenClosed(3000)).code).toBe(4401)
    } finally {
      t.app.liveHub.keepAlive(30_000)
    }
  })

  it('cuts a client that does not answer the keep-alive', async () => {
    const dead = await LiveClient.connect(t.httpPort, { token: token.operatorA }, { autoPong: false })
    await dead.next((m) => m.type === 'ready')
    const alive = await LiveClient.open(t.httpPort, token.operatorA)
    t.app.liveHub.keepAlive(200)
    try {
      await dead.whenClosed(3000)
      expect(alive.closed).toBeNull()
    } finally {
      t.app.liveHub.keepAlive(30_000)
    }
    await alive.close()
  })

  it('drops a client that falls behind (4408) rather than buffering for it', async () => {
    // A client that stops reading fills the kernel's buffers (megabytes on loopback) before any byte waits in the
    // process; a negative limit makes the first message too many, to see what a slow client gets.
    const limit = t.app.liveHub.limits.maxBufferedBytes
    t.app.liveHub.limits.maxBufferedBytes = -1
    try {
      const c = await LiveClient.connect(t.httpPort, { token: token.operatorA })
      expect((await c.whenClosed()).code).toBe(4408)
    } finally {
      t.app.liveHub.limits.maxBufferedBytes = limit
    }
  })

  it('answers a plain GET with 426, and refuses a malformed lastEventId with 4400', async () => {
    const r = await fetch(`${base}/api/v1/live?token=${token.operatorA}`)
    expect(r.status).toBe(426)
    const c = await LiveClient.connect(t.httpPort, { token: token.operatorA, lastEventId: 'yesterday' })
    expect((await c.whenClosed()).code).toBe(4400)
  })

  it("sends a reset first when the history after lastEventId was trimmed, or the id is not this stream's; then goes live", async () => {
    const stream = `${t.names.redisPrefix}live`
    const old = (await redis.xrange(stream, '-', '+', 'COUNT', 1))[0]![0]
    await raise('A')
    const [newest] = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]!
    await redis.xtrim(stream, 'MINID', newest) // everything before the newest entry is gone

    const trimmed = await LiveClient.open(t.httpPort, token.operatorA, old)
    expect(trimmed.messages[0]).toEqual({ type: 'reset', reason: 'history trimmed' })
    expect(trimmed.messages[1]).toMatchObject({ type: 'ready' })
    const a = await raise('A')
    await trimmed.next(isAlert(a.id))
    expect(trimmed.messages).toHaveLength(3) // nothing of the trimmed history is replayed

    const future = await LiveClient.open(t.httpPort, token.operatorA, `${Date.now() + 86_400_000}-0`)
    expect(future.messages[0]).toEqual({ type: 'reset', reason: 'unknown event id' })
    const b = await raise('A')
    await future.next(isAlert(b.id))

    // The newest entry was kept: resuming from just before it is no reset.
    const kept = await LiveClient.open(t.httpPort, token.operatorA, newest)
    expect(kept.messages.filter((m) => m.type === 'reset')).toEqual([])
    expect(kept.backlog().map((m) => (m.alert as Alert).id)).toEqual([a.id, b.id])
    await Promise.all([trimmed.close(), future.close(), kept.close()])
  })

  it('closes every socket with 1001 when the server stops', async () => {
    // Last: the hub stops for good (the app's stop, in afterAll, stops it again: nothing left to close).
    const c = await LiveClient.open(t.httpPort, token.operatorA)
    t.app.liveHub.stop()
    expect((await c.whenClosed()).code).toBe(1001)
  })
})

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1
}

async function waitUntil(ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met')
    await new Promise((r) => setTimeout(r, 5))
  }
}
