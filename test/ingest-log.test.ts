/**
 * The ingest log against a real Redis: duplicate detection at append time, redelivery of unacknowledged entries to
 * a restarted or another consumer, and a trim that never drops what a consumer group still needs.
 * Each test has its own key prefix and deletes its keys afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import path from 'node:path'
import { IngestLog } from '../src/ingest/ingest-log.js'
import { normalize } from '../src/ingest/normalize.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { LogConsumer, type LogConsumerOptions } from '../src/ingest/log-consumer.js'
import type { IngestMessage, ReadingItem } from '../src/ingest/types.js'
import { REDIS_URL, dropRedisPrefix, uniqueNames } from './helpers/env.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function telemetry(items: ReadingItem[], deviceId = 'dev-1'): IngestMessage {
  return { deviceId, unitId: 'unit-1', kind: 'sprinkler_pressure', rx: Date.now(), type: 'telemetry', items }
}

const ids = (list: { id: string }[]) => list.map((e) => e.id)

const reading = (seq: number, ts?: number): ReadingItem => ({ ...(ts !== undefined ? { ts } : {}), seq, values: { pressure_mpa: 0.3 } })

describe('the ingest log (Redis Stream)', () => {
  let prefix: string
  let redis: Redis
  let log: IngestLog
  const connections: Redis[] = []

  /** A consumer on a connection of its own, as in the app (blocking reads hold it). */
  const consumer = (name: string, opts: Partial<LogConsumerOptions> = {}) => {
    const conn = new Redis(REDIS_URL)
    connections.push(conn)
    return new LogConsumer(conn, { stream: log.stream, group: 'writers', consumer: name, blockMs: 50, ...opts })
  }

  /** The items of every entry in the stream, in order. */
  const entries = async () =>
    (await redis.xrange(log.stream, '-', '+')).map(([id, fields]) => {
      const m = JSON.parse(fields[1]!) as IngestMessage
      return { id, n: m.n, items: m.items as ReadingItem[] }
    })

  beforeEach(() => {
    prefix = uniqueNames('ilog').redisPrefix
    redis = new Redis(REDIS_URL)
    connections.push(redis)
    log = new IngestLog(redis, { prefix })
  })

  afterEach(async () => {
    await dropRedisPrefix(prefix)
    for (const c of connections.splice(0)) c.disconnect()
  })

  describe('append', () => {
    it('copies event messages, and only those, to the events stream; the main entry says so', async () => {
      const now = Date.now() - 1000
      const fire: IngestMessage = { deviceId: 'panel-1', unitId: 'unit-1', kind: 'alarm_panel', rx: now, type: 'event', items: [{ ts: now, seq: 1, type: 'fire', point: '1-02' }] }
      await log.append(telemetry([reading(1, now)]))
      await log.append(fire)
      // A redelivered event is a duplicate in both streams.
      expect(await log.append(fire)).toBeNull()
      const main = (await redis.xrange(log.stream, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as IngestMessage)
      const events = (await redis.xrange(log.eventStream, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as IngestMessage)
      expect(main.map((m) => [m.type, m.p])).toEqual([['telemetry', undefined], ['event', 1]])
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ deviceId: 'panel-1', type: 'event', p: 1, items: [{ type: 'fire', point: '1-02' }] })
    })

    it('appends a redelivered message (same seq and ts) once', async () => {
      const ts = Date.now() - 1000
      expect(await log.append(telemetry([reading(42, ts)]))).toMatch(/^\d+-\d+$/)
      expect(await log.append(telemetry([reading(42, ts)]))).toBeNull()
      expect(await log.length()).toBe(1)
    })

    it('appends the same seq with a different ts (a device that rebooted and counts from 0 again)', async () => {
      const ts = Date.now() - 60_000
      await log.append(telemetry([reading(0, ts)]))
      expect(await log.append(telemetry([reading(0, ts + 5000)]))).not.toBeNull()
      expect((await entries()).map((e) => e.items)).toEqual([[reading(0, ts)], [reading(0, ts + 5000)]])
    })

    it('keeps duplicates of one device apart from another device and from another message type', async () => {
      const ts = Date.now() - 1000
      await log.append(telemetry([reading(1, ts)], 'dev-a'))
      expect(await log.append(telemetry([reading(1, ts)], 'dev-b'))).not.toBeNull()
      const event: IngestMessage = { ...telemetry([], 'dev-a'), type: 'event', items: [{ ts, seq: 1, type: 'fault' }] }
      expect(await log.append(event)).not.toBeNull()
      expect(await log.length()).toBe(3)
    })

    it('drops an item with a seq but no ts only when its content repeats too (a resend, not a rebooted device)', async () => {
      expect(await log.append(telemetry([reading(7)]))).not.toBeNull()
      // The same seq and the same content again: the resend of a message whose PUBACK was lost.
      expect(await log.append(telemetry([reading(7)]))).toBeNull()
      // The same seq with other content: a device that rebooted and counts from 0 again.
      const rebooted: ReadingItem = { seq: 7, values: { pressure_mpa: 0.29 } }
      expect(await log.append(telemetry([rebooted]))).not.toBeNull()
      expect(await log.length()).toBe(2)
    })

    it('always appends items without a seq, numbering the entries of the device so each item keeps its own time', async () => {
      const item: ReadingItem = { ts: Date.now() - 1000, values: { pressure_mpa: 0.3 } }
      await log.append(telemetry([item]))
      expect(await log.append(telemetry([item]))).not.toBeNull()
      expect(await log.append(telemetry([reading(1, item.ts)]))).not.toBeNull()
      expect((await entries()).map((e) => e.n)).toEqual([1, 2, undefined])
    })

    it('appends messages of one event-loop turn in one call, in order, deduplicating across them', async () => {
      const ts = Date.now() - 1000
      const ids = await Promise.all([
        log.append(telemetry([reading(1, ts)], 'dev-a')),
        log.append(telemetry([reading(1, ts)], 'dev-a')),
        log.append(telemetry([reading(1, ts)], 'dev-b')),
        log.append(telemetry([reading(2, ts + 1)], 'dev-a'))
      ])
      expect(ids.map((id) => id !== null)).toEqual([true, false, true, true])
      expect((await entries()).map((e) => e.id)).toEqual(ids.filter((id) => id !== null))
    })

    it('sends the messages of later turns together while a call is in flight, and answers each', async () => {
      // A stand-in for Redis whose replies come when the test says: the timing is the test's, not the machine's.
      const calls: { messages: number; answer: () => void }[] = []
      const fake = {
        defineCommand: () => undefined,
        fwIngestAppend: (...args: unknown[]) =>
          new Promise<string>((resolve) => {
            const index = args[args.findIndex((a) => Buffer.isBuffer(a)) + 1] // after the bodies
            const messages = String(index).split('\n').filter((l) => / \d+ \d+ \d+$/.test(l) && l.split(' ').length === 6).length
            // The script's answer: each message's stream id followed by a newline.
            calls.push({ messages, answer: () => resolve(Array.from({ length: messages }, (_, i) => `1-${i}\n`).join('')) })
          })
      }
      const held = new IngestLog(fake as unknown as Redis, { prefix })
      const turn = () => new Promise((r) => setImmediate(r))
      const ts = Date.now() - 1000
      const first = held.append(telemetry([reading(1, ts)]))
      await turn()
      const later = [held.append(telemetry([reading(2, ts + 1)]))]
      await turn()
      later.push(held.append(telemetry([reading(3, ts + 2)])))
      await turn()
      expect(calls.map((c) => c.messages)).toEqual([1])
      calls[0]!.answer()
      expect(await first).toBe('1-0')
      expect(calls.map((c) => c.messages)).toEqual([1, 2])
      calls[1]!.answer()
      expect(await Promise.all(later)).toEqual(['1-0', '1-1'])
    })

    it('answers a script call sent again (a resend after a lost reply) with its first answer, appending nothing twice', async () => {
      // What ioredis does after a reconnect: the same call, same batch key, a second time.
      const real = redis as unknown as Record<string, (...a: unknown[]) => Promise<string>>
      const answers: string[] = []
      const twice = {
        defineCommand: (name: string, def: { lua: string }) => redis.defineCommand(name, def),
        fwIngestAppend: async (...args: unknown[]) => {
          const first = await real.fwIngestAppend!.apply(redis, args)
          const again = await real.fwIngestAppend!.apply(redis, args)
          answers.push(first, again)
          return again
        }
      }
      const resending = new IngestLog(twice as unknown as Redis, { prefix })
      const ts = Date.now() - 1000
      const got = await Promise.all([
        resending.append(telemetry([reading(1, ts)])),
        resending.append(telemetry([reading(1, ts)])), // a duplicate within the same call
        resending.append(telemetry([reading(2, ts + 1)], 'dev-2'))
      ])
      expect(answers).toHaveLength(2)
      expect(answers[1]).toBe(answers[0])
      expect(got[0]).toMatch(/^\d+-\d+$/)
      expect(got[1]).toBeNull()
      expect(got[2]).toMatch(/^\d+-\d+$/)
      expect(ids(await entries())).toEqual([got[0], got[2]])
    })

    it('appends a burst of 256 messages of 500 items each in one turn, cut into batches Redis can run', async () => {
      const ts = Date.now() - 600_000
      const burst = Array.from({ length: 256 }, (_, d) =>
        telemetry(Array.from({ length: 500 }, (_, i) => reading(i, ts + i)), `burst-${d}`)
      )
      const ids = await Promise.all(burst.map((m) => log.append(m)))
      expect(ids.every((id) => id !== null)).toBe(true)
      expect(await log.length()).toBe(256)
    })

    it('rejects every message of a batch when Redis fails, acknowledging none', async () => {
      const broken = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
      broken.on('error', () => undefined)
      connections.push(broken)
      const failing = new IngestLog(broken, { prefix })
      const results = await Promise.allSettled([failing.append(telemetry([reading(1)])), failing.append(telemetry([reading(2)]))])
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    })

    it('appends only the new items of a batch that repeats some', async () => {
      const ts = Date.now() - 10_000
      await log.append(telemetry([reading(1, ts + 1), reading(2, ts + 2)]))
      await log.append(telemetry([reading(1, ts + 1), reading(2, ts + 2), reading(3, ts + 3)]))
      expect((await entries()).map((e) => e.items.map((i) => i.seq))).toEqual([[1, 2], [3]])
    })

    it('numbers an entry that keeps only some of its items (a repeated seq beside items without one)', async () => {
      const ts = Date.now() - 1000
      const loose: ReadingItem = { ts, values: { pressure_mpa: 0.31 } }
      await log.append(telemetry([reading(1, ts), loose]))
      expect(await log.append(telemetry([reading(1, ts), loose]))).not.toBeNull()
      expect((await entries()).map((e) => [e.n, e.items])).toEqual([[1, [reading(1, ts), loose]], [2, [loose]]])
    })

    it("stores a payload sent as is as the device's own bytes, anything normalize changed serialized again", async () => {
      const profile = loadProfiles(path.resolve('devices')).get('sprinkler_pressure')!
      const device = { deviceId: 'dev-raw', unitId: 'unit-1', profile: 'sprinkler_pressure' }
      const ts = Date.now() - 1000
      const sent = Buffer.from(`{ "ts": ${ts},\n  "seq": 3, "values": {"pressure_mpa": 0.320} }`)
      const iso = Buffer.from(JSON.stringify({ ts: new Date(ts).toISOString(), seq: 4, values: { pressure_mpa: 0.33 } }))
      const many = Buffer.from(JSON.stringify([{ ts, seq: 5, values: { pressure_mpa: 0.34 } }]))
      for (const payload of [sent, iso, many]) {
        const r = normalize(device, profile, 'telemetry', payload, Date.now())
        expect(r.ok).toBe(true)
        if (r.ok) await log.append(r.message, payload)
      }
      const raw = (await redis.xrange(log.stream, '-', '+')).map(([, f]) => f[1]!)
      expect(raw[0]).toContain(sent.toString())
      expect(raw[1]).toContain(`{"ts":${ts},"seq":4,`)
      expect((await entries()).map((e) => e.items)).toEqual([[{ ts, seq: 3, values: { pressure_mpa: 0.32 } }], [{ ts, seq: 4, values: { pressure_mpa: 0.33 } }], [{ ts, seq: 5, values: { pressure_mpa: 0.34 } }]])
      // A resend of the bytes sent as is is still a duplicate.
      const again = normalize(device, profile, 'telemetry', sent, Date.now())
      expect(again.ok && (await log.append(again.message, sent))).toBeNull()
    })

    it("trims a device's window at most once per tenth of the window, keeping it at least a window past its last member", async () => {
      const short = new IngestLog(redis, { prefix, dedupWindowMs: 1000 })
      const ts = Date.now() - 1000
      const seenKey = `${prefix}seen:dev-1:telemetry`
      await short.append(telemetry([reading(1, ts)]))
      const first = await redis.pttl(seenKey)
      expect(first).toBeGreaterThan(1000) // window + trim interval (1,100 ms)
      await sleep(20)
      await short.append(telemetry([reading(2, ts + 1)]))
      expect(await redis.pttl(seenKey)).toBeLessThan(first) // not trimmed again within 100 ms
      await sleep(120)
      await short.append(telemetry([reading(3, ts + 2)]))
      expect(await redis.pttl(seenKey)).toBeGreaterThan(1000) // trimmed and extended again
      expect(await redis.zcard(seenKey)).toBe(3)
      expect(await short.append(telemetry([reading(2, ts + 1)]))).toBeNull()
    })

    it('forgets a (seq, ts) after the dedup window', async () => {
      const short = new IngestLog(redis, { prefix, dedupWindowMs: 200 })
      const ts = Date.now() - 1000
      await short.append(telemetry([reading(5, ts)]))
      expect(await short.append(telemetry([reading(5, ts)]))).toBeNull()
      await sleep(300)
      expect(await short.append(telemetry([reading(5, ts)]))).not.toBeNull()
    })
  })

  describe('consumers', () => {
    it('delivers entries not acked again to the same consumer after a restart', async () => {
      const ts = Date.now() - 1000
      for (let seq = 0; seq < 5; seq++) await log.append(telemetry([reading(seq, ts + seq)]))
      const first = consumer('writer-1')
      await first.ensureGroup()
      const batch = await first.next()
      expect(batch.map((e) => (e.message!.items[0] as ReadingItem).seq)).toEqual([0, 1, 2, 3, 4])
      await first.ack(batch.slice(0, 2).map((e) => e.id)) // crashed after storing two

      const restarted = consumer('writer-1')
      await restarted.ensureGroup() // BUSYGROUP is fine
      const again = await restarted.next()
      expect(again.map((e) => e.id)).toEqual(batch.slice(2).map((e) => e.id))
      expect(again.map((e) => e.message)).toEqual(batch.slice(2).map((e) => e.message))
      await restarted.ack(again.map((e) => e.id))
      expect(await restarted.next()).toEqual([])

      // New entries come after the pending ones are done.
      await log.append(telemetry([reading(5, ts + 5)]))
      expect((await restarted.next()).map((e) => (e.message!.items[0] as ReadingItem).seq)).toEqual([5])
    })

    it('lets another consumer claim entries left idle longer than claimIdleMs, and not before', async () => {
      const ts = Date.now() - 1000
      for (let seq = 0; seq < 3; seq++) await log.append(telemetry([reading(seq, ts + seq)]))
      const crashed = consumer('writer-1', { claimIdleMs: 400 })
      await crashed.ensureGroup()
      const held = await crashed.next()
      expect(held).toHaveLength(3)

      const other = consumer('writer-2', { claimIdleMs: 400 })
      expect(await other.next()).toEqual([]) // still fresh: writer-1 may be working on them
      await sleep(500)
      const claimed = await other.next()
      expect(claimed.map((e) => e.id)).toEqual(held.map((e) => e.id))
      await other.ack(claimed.map((e) => e.id))
      const pending = (await redis.xpending(log.stream, 'writers')) as [number, ...unknown[]]
      expect(pending[0]).toBe(0)
    })

    it('hands back an entry trimmed while pending with no message, so it can be acked and skipped', async () => {
      const ts = Date.now() - 1000
      await log.append(telemetry([reading(1, ts)]))
      await log.append(telemetry([reading(2, ts + 1)]))
      const c = consumer('writer-1')
      await c.ensureGroup()
      const batch = await c.next()
      expect(batch).toHaveLength(2)
      // The write failed; meanwhile the first entry was removed from the stream.
      c.retryPending()
      await redis.xdel(log.stream, batch[0]!.id)
      const again = await c.next()
      expect(again).toEqual([{ id: batch[0]!.id, message: null }, batch[1]])
      await c.ack(ids(again))
      expect(await c.next()).toEqual([])
      const pending = (await redis.xpending(log.stream, 'writers')) as [number, ...unknown[]]
      expect(pending[0]).toBe(0)
    })
  })

  describe('trim', () => {
    /**
     * After a trim the log still holds every entry in `required` (pending or undelivered in some group), and it did
     * trim: at most one entry more is kept (trim keeps the oldest group's last delivered entry).
     */
    const expectKeeps = async (required: string[]) => {
      const left = ids(await entries())
      expect(required.filter((id) => !left.includes(id))).toEqual([])
      expect(left.length).toBeLessThanOrEqual(required.length + 1)
    }

    it('removes nothing without consumer groups', async () => {
      for (let seq = 0; seq < 3; seq++) await log.append(telemetry([reading(seq, 1_700_000_000_000 + seq)]))
      expect(await log.trim()).toBe(0)
      expect(await log.length()).toBe(3)
    })

    it('never removes entries pending or undelivered in any group', async () => {
      const ts = Date.now() - 60_000
      for (let seq = 0; seq < 10; seq++) await log.append(telemetry([reading(seq, ts + seq)]))
      const all = ids(await entries())

      const writer = consumer('w', { group: 'writers', batchSize: 5 })
      const rules = consumer('r', { group: 'rules', batchSize: 4 })
      await writer.ensureGroup()
      await rules.ensureGroup()

      // writers: 0-4 delivered, 0-2 acked, 3-4 pending, 5-9 undelivered. rules: nothing delivered yet.
      const w1 = await writer.next()
      await writer.ack(ids(w1).slice(0, 3))
      expect(await log.trim()).toBe(0)
      expect(ids(await entries())).toEqual(all)

      // rules: 0-3 delivered and acked, 4-9 undelivered. The floor is the writers' oldest pending entry (3).
      await rules.ack(ids(await rules.next()))
      expect(await log.trim()).toBe(3)
      expect(ids(await entries())).toEqual(all.slice(3))

      // writers ack 3-4 and hold 5-9 pending; rules still have 4-9 undelivered.
      await writer.ack(ids(w1).slice(3))
      const w2 = await writer.next()
      expect(ids(w2)).toEqual(all.slice(5))
      await log.trim()
      await expectKeeps(all.slice(4))

      // A pending entry of a crashed consumer keeps the log from its id on, even when its group has read further.
      await rules.ack(ids(await rules.next())) // rules: 4-7 acked, 8-9 undelivered
      await writer.ack(ids(w2).filter((id) => id !== all[6])) // writers: only 6 pending
      await log.trim()
      await expectKeeps([all[6]!, all[8]!, all[9]!])
      expect(ids(await entries())[0]).toBe(all[6])

      // Everything acked everywhere.
      await rules.ack(ids(await rules.next()))
      await writer.ack([all[6]!])
      await log.trim()
      await expectKeeps([])

      // New entries appended after the trim are undelivered to both groups and are kept.
      const id = await log.append(telemetry([reading(10, ts + 10)]))
      await log.trim()
      await expectKeeps([id!])
    })
  })
})
