/** Prometheus metrics at /metrics: what came in, what was refused and why, what waits in the ingest log. */
import type { FastifyPluginAsync } from 'fastify'
import { Gauge, Registry } from 'prom-client'
import { REJECT_REASONS, type RejectReason } from '../../ingest/types.js'
import type { LatencyHistogram } from '../../store/latency-histogram.js'
import type { NotificationStats } from '../../notifications/index.js'
import { mirroredHistogram } from '../prom-histogram.js'

export interface MetricsDeps {
  metrics: () => Promise<{
    accepted: number
    connectedDevices: number
    ingestLogLength: number
    ingestBacklog: number | null
    written: number
    writeFailures: number
    deadLettered: number
    rejected: Record<RejectReason, number>
    /** Rule engine: messages evaluated, effects acted on, failed batches, entries not yet evaluated. */
    rules?: { messages: number; effects: number; failures: number; backlog: number | null }
    /** BullMQ job counts by queue and state. */
    queues?: Record<string, Record<string, number>>
    /** Unresolved alerts by class. */
    openAlerts?: Record<string, number>
    liveMessages?: number
    notifications?: number
    /** Accepted messages by kind (telemetry, events, status). */
    acceptedByKind?: Record<string, number>
    /** InfluxDB write requests of the telemetry writer's thread(s). */
    influxWriteSeconds?: LatencyHistogram
    /** Webhook and 119 deliveries (counted where the BullMQ workers run). */
    deliveries?: NotificationStats
    /** Timer and notification jobs failed around their handler: run again, or out of revivals and given up. */
    failedJobs?: { revived: number; givenUp: number }
  }>
}

export const metricsRoutes =
  ({ metrics }: MetricsDeps): FastifyPluginAsync =>
  async (app) => {
    const registry = new Registry()
    // Gauges read on scrape from the counters the stages keep: nothing is counted twice.
    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      new Gauge({ name, help, labelNames, registers: [registry] })
    const accepted = gauge('firewatch_messages_accepted_total', 'Device messages appended to the ingest log (MQTT and Modbus; duplicates not counted)')
    const rejected = gauge('firewatch_messages_rejected_total', 'Device input refused, by reason', ['reason'])
    const connected = gauge('firewatch_connected_devices', 'MQTT connections')
    const entries = gauge('firewatch_ingest_log_entries', 'Entries in the ingest log not yet trimmed')
    const backlog = gauge('firewatch_ingest_backlog', 'Ingest-log entries not yet stored in InfluxDB (lag + pending)')
    const written = gauge('firewatch_points_written_total', 'Points written to InfluxDB')
    const failures = gauge('firewatch_influx_write_failures_total', 'Failed InfluxDB batch writes (retried)')
    const dead = gauge('firewatch_dead_lettered_total', 'Ingest entries InfluxDB refused, moved to the dead-letter stream')
    const ruleMessages = gauge('firewatch_rule_messages_total', 'Device messages evaluated by the rule engine')
    const ruleEffects = gauge('firewatch_rule_effects_total', 'Alert raises/clears and timer starts/cancels the rule engine acted on')
    const ruleFailures = gauge('firewatch_rule_batch_failures_total', 'Rule-engine batches that failed and were evaluated again')
    const ruleBacklog = gauge('firewatch_rule_backlog', 'Ingest-log entries not yet evaluated by the rule engine (lag + pending)')
    const queue = gauge('firewatch_queue_jobs', 'BullMQ jobs by queue and state', ['queue', 'state'])
    const open = gauge('firewatch_open_alerts', 'Unresolved alerts by class', ['class'])
    const live = gauge('firewatch_live_messages_total', 'Alert changes published live (Redis stream, pub/sub, MQTT)')
    const notes = gauge('firewatch_notifications_total', 'Grouped notifications sent')
    const byKind = gauge('firewatch_messages_accepted_by_kind_total', 'Device messages appended to the ingest log, by kind', ['kind'])
    const influxWrite = mirroredHistogram(registry, 'firewatch_influx_write_seconds', 'Duration of InfluxDB write requests (accepted or not)')
    const webhooks = gauge('firewatch_webhook_deliveries_total', 'Webhook delivery attempts by outcome (delivered, failed and retried or dead-lettered)', ['outcome'])
    const failedJobs = gauge('firewatch_failed_jobs_total', 'Timer and notification jobs failed around their handler (stall limit), by outcome (revived: run again, given_up)', ['outcome'])
    const forwards = gauge('firewatch_forward_119_total', '119 forward attempts by outcome (delivered, failed, gave_up: the failure that ended them)', ['outcome'])

    app.get('/metrics', { logLevel: 'warn', schema: { hide: true } }, async (_req, reply) => {
      const m = await metrics()
      accepted.set(m.accepted)
      for (const reason of REJECT_REASONS) rejected.set({ reason }, m.rejected[reason])
      connected.set(m.connectedDevices)
      entries.set(m.ingestLogLength)
      if (m.ingestBacklog !== null) backlog.set(m.ingestBacklog)
      written.set(m.written)
      failures.set(m.writeFailures)
      dead.set(m.deadLettered)
      if (m.rules) {
        ruleMessages.set(m.rules.messages)
        ruleEffects.set(m.rules.effects)
        ruleFailures.set(m.rules.failures)
        if (m.rules.backlog !== null) ruleBacklog.set(m.rules.backlog)
      }
      for (const [q, states] of Object.entries(m.queues ?? {})) for (const [state, n] of Object.entries(states)) queue.set({ queue: q, state }, n)
      for (const c of ['fire', 'supervisory', 'trouble', 'isolation', 'test']) open.set({ class: c }, m.openAlerts?.[c] ?? 0)
      if (m.liveMessages !== undefined) live.set(m.liveMessages)
      if (m.notifications !== undefined) notes.set(m.notifications)
      for (const kind of ['telemetry', 'events', 'status']) byKind.set({ kind }, m.acceptedByKind?.[kind] ?? 0)
      if (m.influxWriteSeconds) influxWrite.set(m.influxWriteSeconds)
      if (m.deliveries) {
        const { webhooks: w, forward119: f } = m.deliveries
        webhooks.set({ outcome: 'delivered' }, w.delivered)
        webhooks.set({ outcome: 'failed' }, w.failed)
        webhooks.set({ outcome: 'dead_lettered' }, w.deadLettered)
        forwards.set({ outcome: 'delivered' }, f.delivered)
        forwards.set({ outcome: 'failed' }, f.failed)
        forwards.set({ outcome: 'gave_up' }, f.gaveUp)
      }
      if (m.failedJobs) {
        failedJobs.set({ outcome: 'revived' }, m.failedJobs.revived)
        failedJobs.set({ outcome: 'given_up' }, m.failedJobs.givenUp)
      }
      return reply.type(registry.contentType).send(await registry.metrics())
    })
  }
