/**
 * Everything that acts on alert changes, built the same way in each thread that changes alerts: the API's (operators
 * acknowledging, resolving) and the rule engine's worker thread. Listeners run in this order: the live message first
 * (an operator's screen is the latency that matters), then escalation, notifications, the risk score, and the
 * unit-level follow-ups (isolation expiry, false alarms); the engine adds its own bookkeeping last.
 */
import { Redis } from 'ioredis'
import type { Config } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { Pool } from '../store/postgres.js'
import type { InfluxStore } from '../store/influx.js'
import type { ProfileMap } from '../ingest/profiles.js'
import { LogConsumer } from '../ingest/log-consumer.js'
import { AlertRepository } from '../alerts/alert-repository.js'
import { AlertService } from '../alerts/alert-service.js'
import { LivePublisher } from '../alerts/live.js'
import { Escalation } from '../alerts/escalation.js'
import { Notifier } from '../alerts/notifier.js'
import { RiskService } from '../alerts/risk.js'
import { Notifications } from '../notifications/index.js'
import { ENGINE_QUEUES, Jobs } from './jobs.js'
import { RuleEngine } from './engine.js'
import { RuleFollowUps } from './follow-ups.js'
import type { RuleSet } from './rule-set.js'
import { AuditLog } from '../audit/audit-log.js'
import { buildFollowUp, type FollowUp } from '../followup/index.js'
import { loadFollowUpPolicy, type FollowUpPolicy } from '../followup/policy.js'

/** Consumer group of the rule engine on the ingest log. */
export const RULES_GROUP = 'rule-engine'

export interface RulesRuntime {
  alerts: AlertService
  jobs: Jobs
  live: LivePublisher
  notifier: Notifier
  /** Webhooks and the 119 forward (docs/NOTIFICATIONS.md). */
  notifications: Notifications
  risk: RiskService
  followUps: RuleFollowUps
  /** Follow-up cases and credit records (src/followup/). */
  followUp: FollowUp
  /** Null in a thread that does not run the engine (the API's). */
  engine: RuleEngine | null
  start(): Promise<void>
  stop(): Promise<void>
}

export function buildRulesRuntime(o: {
  config: Readonly<Config>
  log: Logger
  pool: Pool
  redis: Redis
  store: InfluxStore
  rules: RuleSet
  profiles: ProfileMap
  ingestStream: string
  /** Run the rule engine and the BullMQ workers here (the engine thread), or only produce jobs (the API's thread). */
  runEngine: boolean
  /** Where operators' steps on alerts are recorded (the API's thread); the engine's own steps are not audited. */
  audit?: AuditLog
  /** The follow-up policy, when already loaded (the app checks it at start); otherwise read from config.followupFile. */
  followupPolicy?: FollowUpPolicy
}): RulesRuntime {
  const { config, log, pool, redis, store, rules, profiles } = o
  const alerts = new AlertService(new AlertRepository(pool, o.audit ?? null), log.child({ component: 'alerts' }))
  const risk = new RiskService({ pool, store, log: log.child({ component: 'risk' }) })
  const jobs = new Jobs({ redisUrl: config.redisUrl, prefix: `${config.redisPrefix}bull`, log: log.child({ component: 'jobs' }), sweepEveryMs: config.sweepIntervalMs, webhookConcurrency: config.webhooks.concurrency })
  // The MQTT copy is made by the broker's thread from the live channel (app.ts), whichever thread changed the alert.
  const live = new LivePublisher(redis, config.redisPrefix, () => null, log.child({ component: 'live' }))
  alerts.on('live', (alert, change) => live.publish(alert, change))
  const notifications = new Notifications({ config, log: log.child({ component: 'notifications' }), pool, jobs, runWorkers: o.runEngine })
  // GB 50440: a confirmed fire alarm reaches the 119 command center within 3 s; its forward is enqueued next to the live message.
  alerts.on('forward119', notifications.forward.onAlertChange)
  new Escalation(alerts, jobs, rules, { afterMs: config.escalateAfterMs, remindMs: config.escalateRemindMs })
  const notifier = new Notifier(redis, jobs, log.child({ component: 'notify' }), { intervalMs: config.notifyIntervalMs, prefix: config.redisPrefix })
  notifier.listenTo(alerts)
  alerts.on('risk', risk.onAlertChange)
  const followUps = new RuleFollowUps(alerts, jobs, rules)
  followUps.attach(o.runEngine)
  const followUp = buildFollowUp({
    pool,
    store,
    jobs,
    alerts,
    risk,
    policy: o.followupPolicy ?? loadFollowUpPolicy(config.followupFile),
    log: log.child({ component: 'followup' }),
    // Every case step is audited, the server's own (opened, overdue) too: the engine's thread records them as well.
    audit: o.audit ?? new AuditLog(pool),
    handleJobs: o.runEngine
  })

  let engineRedis: Redis | null = null
  let eventRedis: Redis | null = null
  let engine: RuleEngine | null = null
  if (o.runEngine) {
    engineRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true })
    engineRedis.on('error', (err) => log.warn({ err }, 'Redis connection error (rule engine)'))
    // Blocking reads hold a connection each: the events reader has its own.
    eventRedis = new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true })
    eventRedis.on('error', (err) => log.warn({ err }, 'Redis connection error (rule engine events)'))
    engine = new RuleEngine({
      redis,
      consumer: new LogConsumer(engineRedis, { stream: o.ingestStream, group: RULES_GROUP, consumer: config.consumerName, batchSize: 500 }),
      eventConsumer: new LogConsumer(eventRedis, { stream: `${o.ingestStream}:events`, group: RULES_GROUP, consumer: config.consumerName, batchSize: 100 }),
      pool,
      rules,
      profiles,
      alerts,
      jobs,
      followUps,
      prefix: config.redisPrefix,
      deadLetterStream: `${o.ingestStream}:rules-dead`,
      log: log.child({ component: 'rules' })
    })
  }

  return {
    alerts,
    jobs,
    live,
    notifier,
    notifications,
    risk,
    followUps,
    followUp,
    engine,
    async start() {
      await jobs.start(o.runEngine ? ENGINE_QUEUES : [])
      await followUp.start(o.runEngine)
      await notifications.start()
      if (engine && engineRedis && eventRedis) {
        await engineRedis.connect()
        await eventRedis.connect()
        await engine.start()
      }
    },
    async stop() {
      if (engine) await engine.stop()
      await notifications.stop()
      await jobs.close()
      engineRedis?.disconnect()
      eventRedis?.disconnect()
      await risk.idle()
    }
  }
}
