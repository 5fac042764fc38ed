/**
 * Configuration: read once from the environment, validated, frozen.
 * A bad value stops start-up with a message that names the variable.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { hostname } from 'node:os'
import { FirewatchError } from '../errors.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Config {
  /** MQTT over TCP. `0` picks a free port (tests). @defaultValue 1883 */
  mqttPort: number
  /** MQTT over TLS; only opened when a certificate and key are configured. @defaultValue 8883 */
  mqttTlsPort: number
  mqttTls: { cert: Buffer; key: Buffer } | null
  /**
   * GB/T 26875.3 over TCP, for UITDs; null: not opened. Off unless set, because the protocol has no credentials (a
   * UITD is known by its address alone): open it where the network admits only the UITDs. `0` picks a free port (tests).
   * @defaultValue null
   */
  gb26875Port: number | null
  /** @defaultValue 8080 */
  httpPort: number
  /** Address both listeners bind. @defaultValue 0.0.0.0 */
  host: string
  redisUrl: string
  /** Prefix of every Redis key Firewatch owns, so several deployments or test runs share one Redis. @defaultValue fw: */
  redisPrefix: string
  databaseUrl: string
  /**
   * How long opening a PostgreSQL connection (or waiting for a free one in a pool) may take before the query fails:
   * a database host that silently drops packets would otherwise hold it for minutes. @defaultValue 5000
   */
  databaseConnectTimeoutMs: number
  influxUrl: string
  influxDb: string
  /** InfluxDB token (2.x/3.x) or `user:password` (1.x, sent as HTTP Basic). */
  influxToken: string | null
  adminToken: string
  logLevel: LogLevel
  /** Folder of device profiles. @defaultValue devices/ of the installation */
  devicesDir: string
  /** Name of this process in the ingest-log consumer groups; keep it stable across restarts. @defaultValue host name */
  consumerName: string
  /** How long a Modbus slave may take to answer one request. @defaultValue 1000 */
  modbusTimeoutMs: number
  /** How often the Modbus pollers reread their targets from the registry (the API also tells them at once). @defaultValue 10000 */
  modbusReloadMs: number
  /** Whether this instance polls the Modbus targets: with several instances, exactly one should. @defaultValue true */
  modbusPolling: boolean
  /** Folder of rule files. @defaultValue rules/ of the installation */
  rulesDir: string
  /** The follow-up policy (cases, deadlines, credit rules). @defaultValue rules/followup/policy.yaml of the installation */
  followupFile: string
  /** Whether this instance runs the rule engine: with several instances, exactly one should. @defaultValue true */
  ruleEngine: boolean
  /** A fire alert nobody acknowledged escalates after this long. @defaultValue 60000 */
  escalateAfterMs: number
  /** Then reminds this often until acknowledged. @defaultValue 60000 */
  escalateRemindMs: number
  /** Notifications of one unit are grouped into at most one message per this interval. @defaultValue 10000 */
  notifyIntervalMs: number
  /** How often devices are checked for silence, isolations for expiry, units for false alarms. @defaultValue 60000 */
  sweepIntervalMs: number
  /** Key of the access tokens (JWT HS256). @defaultValue derived from FIREWATCH_ADMIN_TOKEN */
  jwtSecret: string | null
  /** Lifetime of an access token, seconds. @defaultValue 900 */
  accessTokenTtlS: number
  /** Lifetime of a refresh token, seconds. @defaultValue 604800 (7 days) */
  refreshTokenTtlS: number
  /** Where confirmed fire alarms are forwarded (the 119 command center); null: not forwarded. docs/NOTIFICATIONS.md */
  forward119: { url: string; secret: string; timeoutMs: number; attempts: number } | null
  /** Webhook deliveries: how long a receiver may take, how many attempts, first retry delay (doubling). */
  webhooks: { timeoutMs: number; attempts: number; backoffMs: number; concurrency: number }
}

/** The installation root (where package.json, devices/ and the migrations live), from src/ or dist/src/. */
export const projectRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      readFileSync(path.join(dir, 'package.json'))
      return dir
    } catch {
      dir = path.dirname(dir)
    }
  }
  throw new Error('cannot find the Firewatch installation root')
})()

type Env = Record<string, string | undefined>

function bad(name: string, value: string, expected: string): never {
  throw new FirewatchError('FW_ERR_CONFIG', `${name}=${JSON.stringify(value)} is invalid: expected ${expected}`)
}

function ms(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < min || n > max) bad(name, raw, `milliseconds ${min}-${max}`)
  return n
}

/** DATABASE_CONNECT_TIMEOUT_MS, default and bounds in one place: the server's config and the CLIs that open a pool read it. */
export function databaseConnectTimeoutMs(env: Env = process.env): number {
  return ms(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 60_000)
}

function seconds(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < min || n > max) bad(name, raw, `seconds ${min}-${max}`)
  return n
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  return bad(name, raw, 'true or false')
}

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n > 65535) bad(name, raw, 'a TCP port number 0-65535')
  return n
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = env[name] || fallback
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    return bad(name, raw, `a URL (${protocols.join(' or ')})`)
  }
  if (!protocols.includes(parsed.protocol)) bad(name, raw, `a URL (${protocols.join(' or ')})`)
  return raw
}

function secret(env: Env, name: string): string | null {
  const raw = env[name]
  if (raw === undefined || raw === '') return null
  // 32 characters of a random string carry well over the 128 bits an HMAC key needs.
  if (raw.length < 32) bad(name, '***', 'at least 32 characters')
  return raw
}

function required(env: Env, name: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') {
    throw new FirewatchError('FW_ERR_CONFIG', `${name} is required but not set (see .env.example)`)
  }
  return raw
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const adminToken = required(env, 'FIREWATCH_ADMIN_TOKEN')
  // Bearer tokens shorter than this are guessable; refuse them rather than run exposed.
  if (adminToken.length < 16) bad('FIREWATCH_ADMIN_TOKEN', '***', 'at least 16 characters')

  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) bad('LOG_LEVEL', logLevel, LOG_LEVELS.join(', '))

  const influxDb = env.INFLUX_DB || 'firewatch'
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(influxDb)) bad('INFLUX_DB', influxDb, 'letters, digits, _ or -, at most 64')

  const redisPrefix = env.REDIS_PREFIX || 'fw:'
  if (!/^[A-Za-z0-9_:.{}-]{1,64}$/.test(redisPrefix)) bad('REDIS_PREFIX', redisPrefix, 'letters, digits, _ : . { } or -')

  const certFile = env.MQTT_TLS_CERT
  const keyFile = env.MQTT_TLS_KEY
  let mqttTls: Config['mqttTls'] = null
  if (certFile || keyFile) {
    if (!certFile) required(env, 'MQTT_TLS_CERT')
    if (!keyFile) required(env, 'MQTT_TLS_KEY')
    mqttTls = { cert: readFileOr(certFile!, 'MQTT_TLS_CERT'), key: readFileOr(keyFile!, 'MQTT_TLS_KEY') }
  }

  const config: Config = {
    mqttPort: port(env, 'MQTT_PORT', 1883),
    mqttTlsPort: port(env, 'MQTT_TLS_PORT', 8883),
    mqttTls,
    // -1 never comes from port(): it stands for unset, so 0 stays "any free port".
    gb26875Port: ((p) => (p < 0 ? null : p))(port(env, 'GB26875_PORT', -1)),
    httpPort: port(env, 'HTTP_PORT', 8080),
    host: env.HOST || '0.0.0.0',
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisPrefix,
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/firewatch', [
      'postgres:',
      'postgresql:'
    ]),
    databaseConnectTimeoutMs: databaseConnectTimeoutMs(env),
    influxUrl: url(env, 'INFLUX_URL', 'http://127.0.0.1:18086', ['http:', 'https:']),
    influxDb,
    influxToken: env.INFLUX_TOKEN || null,
    adminToken,
    logLevel,
    devicesDir: env.DEVICES_DIR || path.join(projectRoot, 'devices'),
    consumerName: env.INGEST_CONSUMER || hostname(),
    modbusTimeoutMs: ms(env, 'MODBUS_TIMEOUT_MS', 1000, 50, 60_000),
    modbusReloadMs: ms(env, 'MODBUS_RELOAD_MS', 10_000, 100, 3_600_000),
    modbusPolling: flag(env, 'MODBUS_POLLING', true),
    rulesDir: env.RULES_DIR || path.join(projectRoot, 'rules'),
    followupFile: env.FOLLOWUP_FILE || path.join(projectRoot, 'rules', 'followup', 'policy.yaml'),
    ruleEngine: flag(env, 'RULE_ENGINE', true),
    escalateAfterMs: ms(env, 'ESCALATE_AFTER_MS', 60_000, 100, 86_400_000),
    escalateRemindMs: ms(env, 'ESCALATE_REMIND_MS', 60_000, 100, 86_400_000),
    notifyIntervalMs: ms(env, 'NOTIFY_INTERVAL_MS', 10_000, 100, 3_600_000),
    sweepIntervalMs: ms(env, 'SWEEP_INTERVAL_MS', 60_000, 100, 3_600_000),
    jwtSecret: secret(env, 'JWT_SECRET'),
    accessTokenTtlS: seconds(env, 'ACCESS_TOKEN_TTL_S', 900, 10, 86_400),
    refreshTokenTtlS: seconds(env, 'REFRESH_TOKEN_TTL_S', 604_800, 60, 90 * 86_400),
    forward119: forward119(env),
    webhooks: {
      timeoutMs: ms(env, 'WEBHOOK_TIMEOUT_MS', 5000, 100, 60_000),
      attempts: count(env, 'WEBHOOK_ATTEMPTS', 12, 1, 50),
      backoffMs: ms(env, 'WEBHOOK_BACKOFF_MS', 1000, 10, 3_600_000),
      // Deliveries at once: each may wait WEBHOOK_TIMEOUT_MS on a receiver that stopped answering.
      concurrency: count(env, 'WEBHOOK_CONCURRENCY', 50, 1, 500)
    }
  }
  return Object.freeze(config)
}

function count(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < min || n > max) bad(name, raw, `a whole number ${min}-${max}`)
  return n
}

/** The 119 forward is on when FORWARD_119_URL is set; it then needs the key its deliveries are signed with. */
function forward119(env: Env): Config['forward119'] {
  // GB 50440: the forward must arrive within 3 s, so one attempt may take at most that.
  const timeoutMs = ms(env, 'FORWARD_119_TIMEOUT_MS', 1000, 50, 3000)
  // 30 attempts: one to one and a half minutes of retries before the operators are told to phone 119.
  const attempts = count(env, 'FORWARD_119_ATTEMPTS', 30, 1, 100)
  if (!env.FORWARD_119_URL) {
    if (env.FORWARD_119_SECRET) required(env, 'FORWARD_119_URL')
    return null
  }
  const target = url(env, 'FORWARD_119_URL', '', ['http:', 'https:'])
  // fetch refuses user:password@ and names the whole URL in its error, which would go to the logs and the alerts.
  const { username, password } = new URL(target)
  if (username || password) bad('FORWARD_119_URL', '***', 'a URL without user:password@ (put a token in the path or query)')
  const key = secret(env, 'FORWARD_119_SECRET') ?? required(env, 'FORWARD_119_SECRET')
  return { url: target, secret: key, timeoutMs, attempts }
}

function readFileOr(file: string, name: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new FirewatchError('FW_ERR_CONFIG', `${name}=${JSON.stringify(file)} cannot be read: ${(err as Error).message}`)
  }
}
