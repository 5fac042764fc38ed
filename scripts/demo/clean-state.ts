/** The demo's own databases and keys, and emptying them at every start. */
import pg from 'pg'
import { Redis } from 'ioredis'
import { DemoError } from './errors.js'

/** The demo's own names: it drops and recreates these, and nothing else. */
export const DEMO = {
  database: 'firewatch_demo',
  pgAdminUrl: 'postgres://postgres:postgres@127.0.0.1:5432/postgres',
  influxUrl: 'http://127.0.0.1:18086',
  influxPort: 18086,
  influxDb: 'firewatch_demo',
  redisUrl: 'redis://127.0.0.1:6379',
  redisPrefix: 'fwdemo:',
  consumer: 'demo'
} as const
export const DATABASE_URL = `postgres://postgres:postgres@127.0.0.1:5432/${DEMO.database}`

/** Drop the demo's PostgreSQL and InfluxDB databases and delete its Redis keys; says what it did. */
export async function cleanState(): Promise<string[]> {
  const done: string[] = []
  const admin = new pg.Client({ connectionString: DEMO.pgAdminUrl, connectionTimeoutMillis: 10_000 })
  try {
    await admin.connect()
    // FORCE: a leftover server of an earlier demo may still hold connections.
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(DEMO.database)} WITH (FORCE)`)
    done.push(`PostgreSQL ${DEMO.database}`)
  } catch (err) {
    throw new DemoError(`cannot reset PostgreSQL database ${DEMO.database}: ${(err as Error).message}`)
  } finally {
    await admin.end().catch(() => undefined)
  }

  try {
    const res = await fetch(`${DEMO.influxUrl}/query`, {
      method: 'POST',
      body: new URLSearchParams({ q: `DROP DATABASE "${DEMO.influxDb}"` }),
      signal: AbortSignal.timeout(10_000)
    })
    const body = await res.text()
    if (!res.ok || body.includes('"error"')) throw new Error(`HTTP ${res.status}: ${body.slice(0, 200)}`)
    done.push(`InfluxDB ${DEMO.influxDb}`)
  } catch (err) {
    throw new DemoError(`cannot drop InfluxDB database ${DEMO.influxDb} at ${DEMO.influxUrl}: ${(err as Error).message}`)
  }

  const redis = new Redis(DEMO.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on('error', () => undefined)
  try {
    await redis.connect()
    let cursor = '0'
    let deleted = 0
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${DEMO.redisPrefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) deleted += await redis.unlink(...keys)
    } while (cursor !== '0')
    done.push(`${deleted} Redis keys ${DEMO.redisPrefix}*`)
  } catch (err) {
    throw new DemoError(`cannot delete Redis keys ${DEMO.redisPrefix}*: ${(err as Error).message}`)
  } finally {
    redis.disconnect()
  }
  return done
}
