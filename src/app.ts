/**
 * buildApp(config) wires every stage; server.ts only runs it. Tests build the app the same way.
 *
 *   devices ─MQTT─▶ broker (auth, ACL, validate) ─append─▶ ingest log (Redis Stream) ─group─▶ telemetry writer ─▶ InfluxDB
 *   Modbus slaves ◀─poll─ modbus pollers (validate) ─append─┤
 *   UITDs ─GB/T 26875.3─▶ gb26875 gateway (address, validate) ─append─┘ (confirm once appended)
 *                                                                        registry (PostgreSQL) ◀── API (fastify)
 */
import { Redis } from 'ioredis'
import type { Config } from './config/index.js'
import type { Logger } from './logger.js'
import { connectPostgres, migrate, type Pool } from './store/postgres.js'
import { RegistryRepository } from './store/registry-repository.js'
import { InfluxStore } from './store/influx.js'
import { WriterThread } from './store/writer-thread.js'
import { loadProfiles, type ProfileMap } from './ingest/profiles.js'
import { IngestLog } from './ingest/ingest-log.js'
import { Rejections } from './ingest/rejections.js'
import { startBroker, type Broker } from './broker/index.js'
import { Presence, DeviceStateFeed } from './broker/presence.js'
import { DeviceAuthenticator } from './broker/authenticate.js'
import { buildApi, type Api } from './api/index.js'
import { createModbusPollers, type ModbusPollers } from './ingest/modbus/index.js'
import { startGb26875Gateway, type Gb26875Gateway } from './ingest/gb26875/index.js'
import type { AlertService } from './alerts/alert-service.js'
import type { RiskService } from './alerts/risk.js'
import { alertsTopic, LivePublisher } from './alerts/live.js'
import type { Notifier } from './alerts/notifier.js'
import type { Notifications } from './notifications/index.js'
import { loadRules, type RuleSet } from './rules/rule-set.js'
import type { Jobs } from './rules/jobs.js'
import { buildRulesRuntime, RULES_GROUP } from './rules/runtime.js'
import { EngineThread } from './rules/engine-thread.js'
import { ForwardThread } from './notifications/forward-thread.js'
import { AuthService, deriveJwtSecret } from './auth/auth-service.js'
import { ScopeGuard } from './auth/scope.js'
import { LiveHub } from './api/live/live-hub.js'
import { AuditLog } from './audit/audit-log.js'
import { loadFollowUpPolicy } from './followup/policy.js'
import type { FollowUp } from './followup/index.js'
import { DrawService } from './inspections/draw-service.js'
import { ConflictRepository } from './inspections/conflict-repository.js'
import { ReportService } from './reports/summary.js'

/** Consumer group names on the ingest log: one per consuming stage. */
export const CONSUMER_GROUPS = { telemetry: 'telemetry-writer', rules: RULES_GROUP } as const

export interface App {
  readonly config: Readonly<Config>
  readonly profiles: ProfileMap
  readonly registry: RegistryRepository
  readonly store: InfluxStore
  readonly ingestLog: IngestLog
  readonly rejections: Rejections
  readonly writer: WriterThread
  readonly api: Api
  readonly modbus: ModbusPollers
  readonly alerts: AlertService
  readonly risk: RiskService
  readonly auth: AuthService
  readonly guard: ScopeGuard
  readonly rules: RuleSet
  readonly engine: EngineThread
  /** The 119 forward's deliveries, in a thread of their own (started when FORWARD_119_URL is set). */
  readonly forward: ForwardThread
  readonly jobs: Jobs
  readonly live: LivePublisher
  /** The WebSocket clients of the live channel (/api/v1/live). */
  readonly liveHub: LiveHub
  readonly notifier: Notifier
  /** The hash-chained audit trail of operator, inspector and administrator actions (docs/AUDIT.md). */
  readonly audit: AuditLog
  /** Follow-up cases and credit records. */
  readonly followUp: FollowUp
  /** Random inspection draws (双随机、一公开). */
  readonly draws: DrawService
  /** Webhooks and the 119 forward. */
  readonly notifications: Notifications
  /** Set once started. */
  broker: Broker | null
  /** The GB/T 26875.3 gateway for UITDs; set once started when GB26875_PORT is. */
  gb26875: Gb26875Gateway | null
  /** Open the MQTT, GB/T 26875.3 and HTTP listeners and start consuming. Resolves with the ports actually bound. */
  start(): Promise<{ mqttPort: number; mqttTlsPort: number | null; gb26875Port: number | null; httpPort: number }>
  /** Stop accepting, finish in-flight work, close every connection. */
  stop(): Promise<void>
}

export async function buildApp(config: Readonly<Config>, log: Logger): Promise<App> {
  const profiles = loadProfiles(config.devicesDir)
  // Rules are checked before anything connects: an invalid file stops start-up naming the rule and field.
  const rules = loadRules(config.rulesDir, profiles)
  const followupPolicy = loadFollowUpPolicy(config.followupFile)
  const pool: Pool = await connectPostgres(config.databaseUrl, log, config.databaseConnectTimeoutMs)
  await migrate(pool, log)
  const registry = new RegistryRepository(pool)
  const audit = new AuditLog(pool)

  // Appends fail fast while Redis is away, so the device is not acknowledged and sends again later.
  // Auto-pipelining sends the commands issued in one event-loop tick as one socket write instead of one write
  // (one syscall) each; every append still resolves only on its own reply, so a PUBACK still follows the append.
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true, enableAutoPipelining: true })
  redis.on('error', (err) => log.warn({ err }, 'Redis connection error'))
  await redis.connect()
  await checkRedisDurability(redis, log)

  const store = new InfluxStore({ url: config.influxUrl, database: config.influxDb, token: config.influxToken })
  // InfluxDB may be down at start: the log keeps everything and the writer creates the database when it is back.
  await store.ensureDatabase().catch((err) => log.warn({ err }, 'InfluxDB not reachable at start; readings wait in the ingest log'))

  const ingestLog = new IngestLog(redis, { prefix: config.redisPrefix })
  const rejections = new Rejections(log.child({ component: 'ingest' }))
  const authenticator = new DeviceAuthenticator(registry, redis, config.redisPrefix)
  const writer = new WriterThread(
    {
      redisUrl: config.redisUrl,
      stream: ingestLog.stream,
      group: CONSUMER_GROUPS.telemetry,
      consumerName: config.consumerName,
      deadLetterStream: `${ingestLog.stream}:dead`,
      influxUrl: config.influxUrl,
      influxDb: config.influxDb,
      influxToken: config.influxToken,
      logLevel: config.logLevel
    },
    log
  )

  // The API's side of alerts (operators acknowledging, resolving): the same listeners as the engine's thread.
  const runtime = buildRulesRuntime({ config, log, pool, redis, store, rules, profiles, ingestStream: ingestLog.stream, runEngine: false, audit, followupPolicy })
  const { alerts, risk, jobs, live, notifier, followUp, notifications } = runtime
  // Devices going online or offline go out on the live channel with the alert changes (same stream, same order).
  const deviceFeed = new DeviceStateFeed(redis, { stream: live.stream, channel: live.channel, keep: LivePublisher.KEEP }, log.child({ component: 'live' }))
  const presence = new Presence(registry, log, undefined, deviceFeed)
  // The rule engine runs in a thread of its own (src/rules/engine-worker.ts).
  const engine = new EngineThread({ config, ingestStream: ingestLog.stream }, log.child({ component: 'rules' }))
  // So do the 119 forward's deliveries, on every instance that has FORWARD_119_URL, whether it runs the engine or not:
  // a confirmation can be made on any instance, and its forward must not wait for the engine's instance or thread.
  const forward = new ForwardThread({ config }, log.child({ component: 'forward119' }))
  if (!config.forward119) log.warn({ setting: 'FORWARD_119_URL' }, 'FORWARD_119_URL is not set: fire alarms confirmed on this instance are not forwarded to the 119 command center')
  // Every alert change, from either thread, goes out on MQTT v1/alerts/{unitId} from here, where the broker is.
  const liveSubscriber = new Redis(config.redisUrl, { lazyConnect: true })
  liveSubscriber.on('error', (err) => log.warn({ err }, 'Redis connection error (live subscriber)'))
  liveSubscriber.on('message', (_channel: string, body: string) => {
    const publish = mqttPublish(app.broker)
    if (!publish) return
    let unitId: string
    try {
      const message = JSON.parse(body) as { type: string; alert?: { unitId: string } }
      if (message.type !== 'alert' || !message.alert) return // device state changes are not for MQTT
      unitId = message.alert.unitId
    } catch {
      return
    }
    publish(alertsTopic(unitId), body).catch((err: Error) => log.warn({ err }, 'alert not published on MQTT'))
  })

  const modbus = createModbusPollers(registry, {
    profiles,
    ingestLog,
    rejections,
    presence,
    log: log.child({ component: 'modbus' }),
    redis,
    redisPrefix: config.redisPrefix,
    timeoutMs: config.modbusTimeoutMs,
    reloadMs: config.modbusReloadMs
  })

  const auth = new AuthService(pool, {
    jwtSecret: config.jwtSecret ? Buffer.from(config.jwtSecret) : deriveJwtSecret(config.adminToken),
    accessTtlS: config.accessTokenTtlS,
    refreshTtlS: config.refreshTokenTtlS
  })
  const guard = new ScopeGuard(pool)
  // One subscriber (liveSubscriber) for every WebSocket of the live channel; the hub filters per caller's scope.
  const liveHub = new LiveHub({ redis, stream: live.stream, channel: live.channel, auth, guard, log: log.child({ component: 'live' }) })

  const draws = new DrawService({ pool, audit, log: log.child({ component: 'inspections' }) })

  const api = await buildApi({
    adminToken: config.adminToken,
    draws,
    conflicts: new ConflictRepository(pool),
    reports: new ReportService(pool),
    auth,
    guard,
    liveHub,
    redis,
    redisPrefix: config.redisPrefix,
    log,
    registry,
    profiles,
    onDevicesChanged: () => {
      if (config.modbusPolling) void modbus.reload()
    },
    store,
    alerts,
    risk,
    audit,
    cases: followUp.cases,
    credit: followUp.credit,
    notifications,
    // Awaited by the API, so the next message after the reply is judged with the new test mode.
    onTestModeChanged: () => engine.refreshTestModes().catch((err) => log.warn({ err }, 'test modes not reloaded; the next periodic read applies them')),
    checks: {
      redis: () => redis.ping(),
      postgres: () => pool.query('SELECT 1'),
      influxdb: async () => {
        if (!(await store.ping())) throw new Error('no answer, or the credentials are refused')
      },
      writer: async () => {
        if (!writer.alive) throw new Error('the telemetry writer thread is not running')
      },
      rules: async () => {
        if (config.ruleEngine && !engine.alive) throw new Error('the rule engine thread is not running')
      },
      forward119: async () => {
        if (config.forward119 && !forward.alive) throw new Error('the 119 forward thread is not running')
      }
    },
    status: () => counters(),
    metrics: () => counters()
  })

  const counters = async () => ({
    ingestLogLength: await ingestLog.length(),
    ingestBacklog: await ingestLog.backlog(CONSUMER_GROUPS.telemetry),
    accepted: ingestLog.appended,
    connectedDevices: (app.broker?.aedes.connectedClients ?? 0) + (app.gb26875?.connected ?? 0),
    written: writer.stats.written,
    writeFailures: writer.stats.failures,
    deadLettered: writer.stats.deadLettered,
    rejected: rejections.counts,
    rules: {
      messages: engine.stats.messages,
      effects: engine.stats.effects,
      failures: engine.stats.failures,
      backlog: await ingestLog.backlog(CONSUMER_GROUPS.rules)
    },
    queues: await jobs.counts().catch(() => ({})),
    openAlerts: await alerts.repo.openByClass(),
    liveMessages: live.published + engine.stats.liveMessages + forward.stats.liveMessages,
    notifications: notifier.sent + engine.stats.notifications,
    acceptedByKind: ingestLog.appendedByKind,
    influxWriteSeconds: writer.stats.writeSeconds,
    // Webhooks are delivered in the engine's thread, the 119 forward in its own.
    deliveries: { webhooks: engine.stats.webhooks, forward119: forward.stats },
    // Timers and notifications run again or given up after failing around their handler (the engine's thread).
    failedJobs: engine.stats.jobs
  })

  let trimTimer: NodeJS.Timeout | null = null

  const app: App = {
    config,
    profiles,
    registry,
    store,
    ingestLog,
    rejections,
    writer,
    api,
    modbus,
    alerts,
    risk,
    auth,
    guard,
    rules,
    engine,
    forward,
    jobs,
    live,
    liveHub,
    notifier,
    audit,
    followUp,
    draws,
    notifications,
    broker: null,
    gb26875: null,

    async start() {
      await writer.start()
      presence.start()
      app.broker = await startBroker({
        host: config.host,
        port: config.mqttPort,
        tls: config.mqttTls ? { port: config.mqttTlsPort, ...config.mqttTls } : null,
        authenticator,
        profiles,
        ingestLog,
        presence,
        rejections,
        log: log.child({ component: 'broker' }),
        integratorScope: async (key) => {
          const p = await auth.principal(key)
          if (p.kind !== 'api_key') throw new Error('not an API key')
          return p.scope
        },
        unitInScope: async (unitId, scope) => (await guard.unitPath(unitId))?.includes(scope) ?? false
      })
      if (config.gb26875Port !== null) {
        app.gb26875 = await startGb26875Gateway({
          host: config.host,
          port: config.gb26875Port,
          findDevice: (address) => registry.findGb26875Device(address),
          profiles,
          ingestLog,
          presence,
          rejections,
          log: log.child({ component: 'gb26875' })
        })
      }
      await api.listen({ port: config.httpPort, host: config.host })
      if (config.modbusPolling) await modbus.start()
      await runtime.start()
      if (config.ruleEngine) await engine.start()
      if (config.forward119) await forward.start()
      await liveSubscriber.connect()
      await liveSubscriber.subscribe(live.channel)
      liveHub.attach(liveSubscriber)
      trimTimer = setInterval(() => {
        ingestLog.trim().catch((err) => log.warn({ err }, 'ingest log trim failed'))
      }, 5000)
      trimTimer.unref()
      const address = api.server.address()
      const httpPort = typeof address === 'object' && address ? address.port : config.httpPort
      return { mqttPort: app.broker.port, mqttTlsPort: app.broker.tlsPort, gb26875Port: app.gb26875?.port ?? null, httpPort }
    },

    async stop() {
      if (trimTimer) clearInterval(trimTimer)
      liveHub.stop()
      liveSubscriber.disconnect()
      // Stop taking messages first, then drain what was taken.
      await app.broker?.close()
      await app.gb26875?.close()
      await modbus.stop()
      await api.close()
      await writer.stop()
      await engine.stop()
      await forward.stop()
      await runtime.stop()
      await presence.stop()
      await redis.quit().catch(() => undefined)
      await pool.end()
    }
  }
  return app
}

/**
 * "Acknowledged means durable" holds only as far as Redis keeps what it acknowledged: an evicted stream entry is a
 * lost reading, and without AOF a Redis restart loses the log. Say so at start (managed Redis may hide CONFIG).
 */
async function checkRedisDurability(redis: Redis, log: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[]
    const [, aof] = (await redis.config('GET', 'appendonly')) as string[]
    if (policy !== 'noeviction') {
      log.warn({ maxmemoryPolicy: policy }, 'Redis may evict keys: set maxmemory-policy noeviction, or acknowledged readings can be lost')
    }
    if (aof !== 'yes') {
      log.warn({ appendonly: aof }, 'Redis keeps no append-only file: a Redis restart loses the ingest backlog (fine for development only)')
    }
  } catch (err) {
    log.debug({ err }, 'cannot read the Redis configuration; check appendonly and maxmemory-policy by hand')
  }
}

/** Publish on the embedded broker (QoS 1, not retained); null while it is not running. */
function mqttPublish(broker: Broker | null) {
  if (!broker) return null
  return (topic: string, payload: string) =>
    new Promise<void>((resolve, reject) =>
      broker.aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) =>
        err ? reject(err) : resolve()
      )
    )
}
