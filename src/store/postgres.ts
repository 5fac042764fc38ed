/**
 * PostgreSQL: the connection pool and the versioned migrations applied at start.
 * Migrations are plain SQL files (src/store/migrations/NNN_name.sql) applied in order, each in its own
 * transaction, under an advisory lock so several instances starting together apply each one once.
 * An applied migration whose file changed afterwards stops start-up: history is never rewritten.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { projectRoot } from '../config/index.js'
import { FirewatchError } from '../errors.js'
import type { Logger } from '../logger.js'

export const MIGRATIONS_DIR = path.join(projectRoot, 'src', 'store', 'migrations')
// An arbitrary constant: the key of the advisory lock that serialises migrations.
const MIGRATION_LOCK = 0x66697265

export type Pool = pg.Pool

/**
 * Run `fn` in one transaction on a client of its own: committed when it resolves, rolled back when it throws (the
 * error goes on). `begin` sets the isolation and access mode, e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query(begin)
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    client.release()
  }
}

export interface PoolOptions {
  /** @defaultValue 10 */
  max?: number
  /**
   * How long getting a client may take: opening a connection, or waiting for a free one. A database host that drops
   * packets fails the query after this ("timeout exceeded when trying to connect") instead of after minutes of TCP
   * retransmissions. DATABASE_CONNECT_TIMEOUT_MS.
   */
  connectTimeoutMs: number
  /**
   * How long a query may wait for its answer before it fails ("Query read timeout") and its connection is dropped.
   * Only for a pool whose queries are all short (the 119 forward's): migrations, reports and the audit check run long.
   * @defaultValue none
   */
  queryTimeoutMs?: number
}

/**
 * TCP keepalive on every connection, first probe after this much silence: a connection whose peer vanished without a
 * word (a failover, a NAT or firewall that forgot it) otherwise holds its query, and the request or engine behind it,
 * until the OS's default 2 h idle time. With it the kernel gives up after this plus its probes (Linux:
 * tcp_keepalive_intvl × tcp_keepalive_probes, 75 s × 9 by default); a live but idle connection costs a probe.
 */
export const KEEPALIVE_INITIAL_DELAY_MS = 10_000

/** Options every connection gets, pooled or not: the connect timeout and keepalive. */
const connectionOptions = (connectTimeoutMs: number) => ({ connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS })

/** A pool that connects on its first query: for a thread that must start while PostgreSQL is away (the 119 forward's). */
export function openPool(databaseUrl: string, log: Logger, o: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: o.max ?? 10,
    ...connectionOptions(o.connectTimeoutMs),
    ...(o.queryTimeoutMs ? { query_timeout: o.queryTimeoutMs } : {})
  })
  pool.on('error', (err) => log.error({ err }, 'idle PostgreSQL client failed'))
  return pool
}

/** Connect, creating the database first when it does not exist yet (a new installation, a test run). */
export async function connectPostgres(databaseUrl: string, log: Logger, connectTimeoutMs: number): Promise<pg.Pool> {
  const pool = openPool(databaseUrl, log, { connectTimeoutMs })
  try {
    await pool.query('SELECT 1')
    return pool
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') {
      await pool.end()
      throw err
    }
  }
  const url = new URL(databaseUrl)
  const name = decodeURIComponent(url.pathname.slice(1))
  url.pathname = '/postgres'
  const admin = new pg.Client({ connectionString: url.toString(), ...connectionOptions(connectTimeoutMs) })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
    log.info({ database: name }, 'created PostgreSQL database')
  } catch (err) {
    // Another instance created it in the meantime.
    if ((err as { code?: string }).code !== '42P04') throw err
  } finally {
    await admin.end()
  }
  return pool
}

export async function migrate(pool: pg.Pool, log: Logger, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
  const client = await pool.connect()
  const applied: string[] = []
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await client.query<{ version: string; checksum: string }>('SELECT version, checksum FROM schema_migrations')
    const done = new Map(rows.map((r) => [r.version, r.checksum]))
    for (const file of files) {
      const sql = readFileSync(path.join(dir, file), 'utf8')
      const checksum = createHash('sha256').update(sql).digest('hex')
      const version = file.replace(/\.sql$/, '')
      const previous = done.get(version)
      if (previous !== undefined) {
        if (previous !== checksum) {
          throw new FirewatchError('FW_ERR_CONFIG', `migration ${file} was changed after it was applied; add a new migration instead`)
        }
        continue
      }
      await client.query('BEGIN')
      try {
        await client.query(sql)
        await client.query('INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)', [version, checksum])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw new FirewatchError('FW_ERR_CONFIG', `migration ${file} failed: ${(err as Error).message}`)
      }
      applied.push(version)
      log.info({ migration: version }, 'applied migration')
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined)
    client.release()
  }
  return applied
}
