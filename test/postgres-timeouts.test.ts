/**
 * A PostgreSQL host that silently drops packets: the pools, and the audit check's, give up after their timeouts with a
 * clear error instead of hanging for minutes; every connection has TCP keepalive, for a peer that vanishes once it is
 * open (checked on the kernel's own socket table); and the 119 forward is sent within GB 50440's 3 s all the same, its job finished, not stuck.
 * The dead host is a TCP server on an ephemeral port that accepts connections and never answers; a proxy to the real
 * PostgreSQL that stops passing bytes stands for a connection that died once open.
 */
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import pg from 'pg'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { dropRedisPrefix, REDIS_URL, testConfig, uniqueNames, waitFor } from './helpers/env.js'
import { Receiver } from './helpers/receiver.js'
import { runAuditVerify } from './helpers/audit-cli.js'
import { connectPostgres, KEEPALIVE_INITIAL_DELAY_MS, openPool, type Pool } from '../src/store/postgres.js'
import { Jobs, jobId } from '../src/rules/jobs.js'
import { Forward119Delivery, forwardPoolOptions } from '../src/notifications/forward-119-delivery.js'
import type { Alert } from '../schemas/alerts.js'

const log = pino({ level: 'silent' })
const sockets = new Set<net.Socket>()
const servers: net.Server[] = []
const pools: Pool[] = []

async function listen(server: net.Server): Promise<number> {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
}
const track = (s: net.Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s)), s.on('error', () => undefined))

/** Accepts TCP connections and never answers: a database host behind a firewall that drops packets. */
let silentPort: number
const silentUrl = () => `postgres://postgres@127.0.0.1:${silentPort}/firewatch`

beforeAll(async () => {
  silentPort = await listen(net.createServer((s) => void track(s)))
})
afterEach(async () => {
  await Promise.allSettled(pools.splice(0).map((p) => p.end()))
})
afterAll(async () => {
  for (const s of sockets) s.destroy()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

/** How long `p` took to reject, and its error. */
async function rejection(p: Promise<unknown>): Promise<{ ms: number; err: Error }> {
  const started = Date.now()
  const err = await p.then(
    () => new Error('resolved'),
    (e: Error) => e
  )
  return { ms: Date.now() - started, err }
}

/**
 * The kernel's timer on the connection from this local port (Linux's /proc/net/tcp): `tr` 2 is the keepalive timer,
 * `whenS` the seconds until it fires; an idle connection without keepalive has no timer (`tr` 0).
 */
function tcpTimer(localPort: number): { tr: number; whenS: number } {
  const local = `0100007F:${localPort.toString(16).toUpperCase().padStart(4, '0')}`
  const line = readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === local)
  if (!line) throw new Error(`no socket at ${local}`)
  const [tr, when] = line[5]!.split(':')
  // In clock ticks (USER_HZ, 100 a second).
  return { tr: parseInt(tr!, 16), whenS: parseInt(when!, 16) / 100 }
}
const localPortOf = (client: pg.ClientBase) => (client as unknown as { connection: { stream: net.Socket } }).connection.stream.localPort!

describe('PostgreSQL timeouts', () => {
  it('fails a query after the connect timeout when the host never answers', async () => {
    const pool = openPool(silentUrl(), log, { connectTimeoutMs: 300 })
    pools.push(pool)
    const { ms, err } = await rejection(pool.query('SELECT 1'))
    expect(err.message).toMatch(/timeout/)
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(1500)
  })

  it('fails start-up after the connect timeout rather than hang (connectPostgres)', async () => {
    const { ms, err } = await rejection(connectPostgres(silentUrl(), log, 300))
    expect(err.message).toMatch(/timeout/)
    expect(ms).toBeLessThan(1500)
  })

  it('fails a query on an open connection that stops answering after the query timeout, and connects afresh', async () => {
    // A proxy to the real PostgreSQL that can stop passing bytes either way, as a dead route would.
    let silent = false
    const port = await listen(
      net.createServer((client) => {
        const db = track(net.connect(5432, '127.0.0.1'))
        track(client)
        client.on('data', (b) => void (silent || db.write(b)))
        db.on('data', (b) => void (silent || client.write(b)))
        client.on('close', () => db.destroy())
        db.on('close', () => client.destroy())
      })
    )
    const pool = openPool(`postgres://postgres@127.0.0.1:${port}/postgres`, log, { max: 1, connectTimeoutMs: 1000, queryTimeoutMs: 300 })
    pools.push(pool)
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    silent = true
    const { ms, err } = await rejection(pool.query('SELECT 2'))
    expect(err.message).toBe('Query read timeout')
    expect(ms).toBeLessThan(1500)
    // The stuck connection was dropped, not handed out again.
    silent = false
    expect((await pool.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }])
  })

  it.skipIf(!existsSync('/proc/net/tcp'))('sets TCP keepalive on every pooled connection, so a peer that vanished is noticed', async () => {
    const pool = openPool('postgres://postgres@127.0.0.1:5432/postgres', log, { connectTimeoutMs: 1000 })
    pools.push(pool)
    const client = await pool.connect()
    const plain = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' })
    try {
      await client.query('SELECT 1')
      await plain.connect()
      await plain.query('SELECT 1')
      // Idle now: the pool's connection has its keepalive timer running, due within the initial delay.
      const timer = tcpTimer(localPortOf(client))
      expect(timer.tr).toBe(2)
      expect(timer.whenS).toBeGreaterThan(0)
      expect(timer.whenS).toBeLessThanOrEqual(KEEPALIVE_INITIAL_DELAY_MS / 1000)
      // pg's default, for contrast: no timer at all, a vanished peer waits for the OS's 2 h or forever.
      expect(tcpTimer(localPortOf(plain)).tr).toBe(0)
    } finally {
      client.release()
      await plain.end()
    }
  })

  it('fails the audit check after the connect timeout when the host never answers (npm run audit:verify)', async () => {
    const started = Date.now()
    const r = await runAuditVerify(silentUrl(), ['--quiet'], { DATABASE_CONNECT_TIMEOUT_MS: '300' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot check: .*timeout/)
    // tsx's start-up included; without a connect timeout it waits for the kernel's retransmissions, minutes.
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('sends the 119 forward within 3 s and finishes its job while PostgreSQL never answers', async () => {
    const receiver = new Receiver()
    const names = uniqueNames('pgto')
    const config = testConfig(names, {
      DATABASE_URL: silentUrl(),
      DATABASE_CONNECT_TIMEOUT_MS: '500',
      FORWARD_119_URL: `http://127.0.0.1:${await receiver.start()}/119`,
      FORWARD_119_SECRET: 'forward-119-secret-for-the-tests-0123456789'
    })
    // As the forward's thread wires it (forward-worker.ts), on this thread.
    const pool = openPool(config.databaseUrl, log, forwardPoolOptions(config))
    pools.push(pool)
    const jobs = new Jobs({ redisUrl: REDIS_URL, prefix: `${names.redisPrefix}bull`, log, sweepEveryMs: 60_000 })
    new Forward119Delivery({ pool, jobs, log, target: config.forward119!, live: { publish: async () => undefined } })
    try {
      await jobs.start(['forward119'])
      const alert = { id: '4711', unitId: 'u-1', class: 'fire', confirmedAt: new Date().toISOString(), confirmedBy: 'root' } as Alert
      const id = jobId('fwd119', alert.id)
      const enqueued = Date.now()
      await jobs.enqueue('forward119', 'forward', id, { alertId: alert.id, alert, unit: null }, { attempts: 3, backoff: { type: 'fast' }, keepFailed: true })
      // The "delivered already?" check gives up after 1 s and the forward goes out.
      const ok = await receiver.waitFor((q) => q.status === 200, 5000)
      expect(ok.at - enqueued).toBeLessThan(3000)
      // Its record cannot be written (logged as an error): the job still ends, delivered, within the connect timeout.
      await waitFor(async () => (await jobs.getJob('forward119', id)) === undefined, 5000, 50)
      expect(receiver.requests).toHaveLength(1)
    } finally {
      await jobs.close()
      await receiver.stop()
      await dropRedisPrefix(names.redisPrefix)
    }
  })
})
