/**
 * Notifications, grouped per unit and rate-limited, so an alarm storm (a building losing power: hundreds of power
 * faults in a second) makes a handful of messages, not hundreds.
 *
 * A change to notify is pushed on the unit's pending list. The first change after a quiet spell goes out at once
 * (a fire alarm is never held back); the unit then has a slot reserved for `intervalMs`, and every change during it
 * joins one digest sent when the slot ends. The digest is a BullMQ job whose id is (unit, send time), so however many
 * changes arrive, one job per slot exists; the job takes the whole list atomically.
 *
 * Where a digest goes: the `{prefix}notifications` stream (the outbox webhook and 119 deliveries read) and the
 * `{prefix}live:notifications` channel.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import type { Alert } from '../../schemas/alerts.js'
import type { AlertChange } from './alert-repository.js'
import type { AlertService } from './alert-service.js'
import { jobId, type Jobs } from '../rules/jobs.js'

export interface NotifierOptions {
  intervalMs: number
  prefix: string
}

/** Changes worth a person's attention. Test alerts never notify. */
const NOTIFY: ReadonlySet<AlertChange> = new Set(['opened', 'upgraded', 'escalated', 'reminded'])

export interface NotificationItem {
  alertId: string
  change: AlertChange
  class: Alert['class']
  severity: Alert['severity']
  title: string
  deviceId: string
  point: string
  at: string
}

export interface Notification {
  unitId: string
  items: NotificationItem[]
  /** Counts by class, so a digest of 300 power faults reads as one line. */
  byClass: Record<string, number>
  sentAt: string
}

/** The notification outbox stream, read by webhook delivery (notifications/webhook-dispatcher.ts). */
export const outboxStream = (prefix: string) => `${prefix}notifications`

// Reserve the unit's slot if free (send now), else return the reserved slot's end (send then).
const RESERVE = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local slot = redis.call('GET', KEYS[1])
if not slot then
  redis.call('SET', KEYS[1], now, 'PX', interval)
  return now
end
return tonumber(slot) + interval
`
// Take every pending change of the unit and write the digest, in one step: a crash can lose neither. Reserve the next
// slot from now. KEYS: pending list, slot, outbox stream; ARGV: unit id, now, interval, channel.
const SEND = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items == 0 then return false end
local byClass = {}
for _, raw in ipairs(items) do
  local c = cjson.decode(raw)['class']
  byClass[c] = (byClass[c] or 0) + 1
end
local body = '{"unitId":' .. cjson.encode(ARGV[1]) .. ',"items":[' .. table.concat(items, ',') .. '],"byClass":' ..
  cjson.encode(byClass) .. ',"sentAt":' .. cjson.encode(ARGV[5]) .. '}'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 100000, '*', 'm', body)
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], body)
return body
`

export class Notifier {
  sent = 0
  constructor(
    private readonly redis: Redis,
    private readonly jobs: Jobs,
    private readonly log: Logger,
    private readonly opts: NotifierOptions
  ) {
    jobs.handle('notify', 'digest', (data) => this.send(String(data.unitId)))
  }

  get stream(): string {
    return outboxStream(this.opts.prefix)
  }

  listenTo(alerts: AlertService): void {
    alerts.on('notifier', (alert, change) => this.enqueue(alert, change))
  }

  private pendingKey(unitId: string) {
    return `${this.opts.prefix}notify:pending:${unitId}`
  }
  private slotKey(unitId: string) {
    return `${this.opts.prefix}notify:slot:${unitId}`
  }

  async enqueue(alert: Alert, change: AlertChange): Promise<void> {
    if (!NOTIFY.has(change) || alert.class === 'test') return
    const item: NotificationItem = {
      alertId: alert.id,
      change,
      class: alert.class,
      severity: alert.severity,
      title: alert.title,
      deviceId: alert.deviceId,
      point: alert.point,
      at: new Date().toISOString()
    }
    const now = Date.now()
    await this.redis.rpush(this.pendingKey(alert.unitId), JSON.stringify(item))
    const sendAt = Number(await this.redis.eval(RESERVE, 1, this.slotKey(alert.unitId), now, this.opts.intervalMs))
    await this.jobs.schedule('notify', 'digest', jobId('notify', alert.unitId, sendAt), sendAt - now, { unitId: alert.unitId })
  }

  private async send(unitId: string): Promise<void> {
    const now = Date.now()
    const body = (await this.redis.eval(
      SEND,
      3,
      this.pendingKey(unitId),
      this.slotKey(unitId),
      this.stream,
      unitId,
      now,
      this.opts.intervalMs,
      `${this.opts.prefix}live:notifications`,
      new Date(now).toISOString()
    )) as string | null
    if (!body) return
    const n = JSON.parse(body) as Notification
    this.sent++
    this.log.info({ unitId, alerts: n.items.length, byClass: n.byClass }, 'notification sent')
  }
}
