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
// Take every pending change of the unit, and reserve the next slot from now.
const TAKE = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
if #items > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
return items
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
    return `${this.opts.prefix}notifications`
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
    const raw = (await this.redis.eval(TAKE, 2, this.pendingKey(unitId), this.slotKey(unitId), Date.now(), this.opts.intervalMs)) as string[]
    if (raw.length === 0) return
    const items = raw.map((r) => JSON.parse(r) as NotificationItem)
    const byClass: Record<string, number> = {}
    for (const i of items) byClass[i.class] = (byClass[i.class] ?? 0) + 1
    const n: Notification = { unitId, items, byClass, sentAt: new Date().toISOString() }
    const body = JSON.stringify(n)
    try {
      await this.redis.multi().xadd(this.stream, 'MAXLEN', '~', 100_000, '*', 'm', body).publish(`${this.opts.prefix}live:notifications`, body).exec()
    } catch (err) {
      // Put them back for the job's retry: a digest is never dropped.
      await this.redis.lpush(this.pendingKey(unitId), ...raw.reverse()).catch(() => undefined)
      throw err
    }
    this.sent++
    this.log.info({ unitId, alerts: items.length, byClass }, 'notification sent')
  }
}
