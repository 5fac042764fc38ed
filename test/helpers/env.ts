/**
 * Test isolation: each test app gets its own PostgreSQL database, InfluxDB database and Redis key prefix,
 * and removes them afterwards, so runs can repeat and share the machine's services with earlier data.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { loadConfig, type Config } from '../../src/config/index.js'
import { buildApp, type App } from '../../src/app.js'
import { InfluxStore } from '../../src/store/influx.js'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'
export const REDIS_URL = 'redis://127.0.0.1:6379'
export const INFLUX_URL = process.env.INFLUX_URL ?? 'http://127.0.0.1:18086'
const PG_BASE = 'postgres://postgres@127.0.0.1:5432'

export interface TestNames {
  suffix: string
  database: string
  influxDb: string
  redisPrefix: string
}

export function uniqueNames(label = 't'): TestNames {
  const suffix = `${label}_${process.pid}_${randomBytes(4).toString('hex')}`.toLowerCase()
  return { suffix, database: `fw_test_${suffix}`, influxDb: `fw_test_${suffix}`, redisPrefix: `fwtest:${suffix}:` }
}

/** The environment a server process of this test would get. */
export function testEnv(names: TestNames, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FIREWATCH_ADMIN_TOKEN: ADMIN_TOKEN,
    MQTT_PORT: '0',
    HTTP_PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    REDIS_PREFIX: names.redisPrefix,
    DATABASE_URL: `${PG_BASE}/${names.database}`,
    INFLUX_URL,
    INFLUX_DB: names.influxDb,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    INGEST_CONSUMER: `test-${names.suffix}`,
    // The rule engine's thread (and its BullMQ workers) only where a test needs it: every app that runs it adds a
    // thread, connections and CPU the timing-sensitive tests of the same run then miss.
    RULE_ENGINE: 'false',
    ...extra
  }
}

export function testConfig(names: TestNames, extra: Record<string, string> = {}): Readonly<Config> {
  return loadConfig(testEnv(names, extra))
}

/** Drop everything a test created under these names. */
export async function dropNames(names: TestNames): Promise<void> {
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(names.database)} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
  await new InfluxStore({ url: INFLUX_URL, database: names.influxDb, token: null }).dropDatabase()
  await dropRedisPrefix(names.redisPrefix)
}

/** Delete every Redis key under this prefix. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

/** `headers` are sent besides the bearer token (and the content type of a body). */
export type ApiCall = <T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>
) => Promise<{ status: number; body: T }>

/** The system administrator every test server gets (created with FIREWATCH_ADMIN_TOKEN at /auth/bootstrap). */
export const ROOT_USER = { username: 'root', password: 'root-password-for-tests', displayName: 'Test Administrator' }

/** Call a server with a bearer token of one's own, no bootstrap or login. */
export function apiWithToken(base: string, token: () => Promise<string> | string): ApiCall {
  return async <T>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + p, {
      method,
      headers: {
        authorization: `Bearer ${await token()}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    const text = await res.text()
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T }
  }
}

/** Log in as a user; returns the session. */
export async function loginAt(base: string, username: string, password: string): Promise<{ accessToken: string; refreshToken: string }> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password })
  })
  if (res.status !== 200) throw new Error(`login as ${username}: ${res.status} ${await res.text()}`)
  return (await res.json()) as { accessToken: string; refreshToken: string }
}

/**
 * The API of a server at this base URL (`http://127.0.0.1:port`) as its system administrator: the first call creates
 * the administrator with the bootstrap token (a server restarted on the same database has one already) and logs in.
 */
export function apiAt(base: string): ApiCall {
  let token: Promise<string> | null = null
  const session = async () => {
    const res = await fetch(`${base}/api/v1/auth/bootstrap`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(ROOT_USER)
    })
    if (res.status !== 201 && res.status !== 409) throw new Error(`bootstrap: ${res.status} ${await res.text()}`)
    return (await loginAt(base, ROOT_USER.username, ROOT_USER.password)).accessToken
  }
  return apiWithToken(base, () => {
    token ??= session().catch((err: unknown) => {
      token = null
      throw err
    })
    return token
  })
}

/** A city and a high-risk unit in it, through the API. Returns the unit id. */
export async function createUnitAt(api: ApiCall): Promise<string> {
  const tag = randomBytes(4).toString('hex')
  const city = `city-${tag}`
  const unit = `unit-${tag}`
  const r1 = await api('POST', '/api/v1/jurisdictions', { id: city, name: 'Test City', level: 'city' })
  if (r1.status !== 201) throw new Error(`jurisdiction: ${r1.status} ${JSON.stringify(r1.body)}`)
  const r2 = await api('POST', '/api/v1/units', {
    id: unit,
    jurisdictionId: city,
    name: 'Test Mall',
    address: '1 Test Road',
    category: 'high_risk',
    contactName: 'Duty Manager',
    contactPhone: '0571-0000000'
  })
  if (r2.status !== 201) throw new Error(`unit: ${r2.status} ${JSON.stringify(r2.body)}`)
  return unit
}

/** A device of this kind, through the API (in a new unit unless one is given). */
export async function provisionAt(api: ApiCall, kind = 'sprinkler_pressure', unitId?: string): Promise<{ id: string; secret: string; unitId: string }> {
  unitId ??= await createUnitAt(api)
  const res = await api<{ id: string; secret: string }>('POST', '/api/v1/devices', { id: `dev-${randomBytes(6).toString('hex')}`, unitId, kind })
  if (res.status !== 201) throw new Error(`device: ${res.status} ${JSON.stringify(res.body)}`)
  return { id: res.body.id, secret: res.body.secret, unitId }
}

export interface TestApp {
  app: App
  names: TestNames
  mqttPort: number
  httpPort: number
  mqttUrl: string
  /** Call the API as the admin. */
  api: ApiCall
  provision(kind?: string, unitId?: string): Promise<{ id: string; secret: string; unitId: string }>
  stop(): Promise<void>
  /** Stop the app and drop its databases and keys: what every test file does last. */
  dispose(): Promise<void>
}

export async function startTestApp(names = uniqueNames(), extra: Record<string, string> = {}): Promise<TestApp> {
  const config = testConfig(names, extra)
  const log = pino({ level: config.logLevel })
  const app = await buildApp(config, log)
  const ports = await app.start()
  const api = apiAt(`http://127.0.0.1:${ports.httpPort}`)
  let defaultUnit: Promise<string> | null = null
  const t: TestApp = {
    app,
    names,
    mqttPort: ports.mqttPort,
    httpPort: ports.httpPort,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqttPort}`,
    api,
    async provision(kind = 'sprinkler_pressure', unitId) {
      defaultUnit ??= createUnitAt(api)
      return provisionAt(api, kind, unitId ?? (await defaultUnit))
    },
    async stop() {
      await app.stop()
    },
    async dispose() {
      await app.stop()
      await dropNames(names)
    }
  }
  return t
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
