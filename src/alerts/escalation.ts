/**
 * Escalation: a fire alert nobody acknowledged within `afterMs` (default 60 s) escalates and is sent again; reminders
 * follow every `remindMs` until someone acknowledges. Each step is a BullMQ delayed job with an id of its own
 * (alert, level), so a restart keeps the schedule and a step is never scheduled twice; the handler re-checks the
 * alert, so an acknowledgement that came first wins even if its cancel did not.
 */
import type { Jobs } from '../rules/jobs.js'
import { jobId } from '../rules/jobs.js'
import type { RuleSet } from '../rules/rule-set.js'
import type { Alert } from '../../schemas/alerts.js'
import type { AlertChange } from './alert-repository.js'
import type { AlertService } from './alert-service.js'

export interface EscalationOptions {
  afterMs: number
  remindMs: number
  /** Reminders stop after this many levels (with the default minute, 100 minutes of reminders). @defaultValue 100 */
  maxLevel?: number
}

const escId = (alertId: string, level: number) => jobId('esc', alertId, level)

export class Escalation {
  constructor(
    private readonly alerts: AlertService,
    private readonly jobs: Jobs,
    private readonly rules: RuleSet,
    private readonly opts: EscalationOptions
  ) {
    jobs.handle('timers', 'escalate', (data) => this.fire(String(data.alertId), Number(data.level)))
    alerts.on('escalation', (alert, change) => this.onChange(alert, change))
  }

  private escalates(alert: Alert): boolean {
    if (alert.class === 'test') return false
    return this.rules.byId.get(alert.ruleId)?.escalate ?? alert.class === 'fire'
  }

  private async onChange(alert: Alert, change: AlertChange): Promise<void> {
    if ((change === 'opened' || change === 'recurred') && alert.status === 'open' && this.escalates(alert)) {
      const level = alert.escalationLevel + 1
      await this.jobs.schedule('timers', 'escalate', escId(alert.id, level), this.delay(level), { alertId: alert.id, level })
    } else if (change === 'acknowledged' || change === 'confirmed' || change === 'resolved') {
      await this.jobs.cancel('timers', escId(alert.id, alert.escalationLevel + 1))
    }
  }

  private delay(level: number): number {
    return level === 1 ? this.opts.afterMs : this.opts.remindMs
  }

  /**
   * The next step is scheduled before this one is recorded (its id makes that idempotent): if the process dies
   * between the two, or this job is retried, the chain goes on. The next step's handler re-checks the alert.
   */
  private async fire(alertId: string, level: number): Promise<void> {
    const alert = await this.alerts.get(alertId)
    if (!alert || alert.status !== 'open') return
    if (level < (this.opts.maxLevel ?? 100)) {
      await this.jobs.schedule('timers', 'escalate', escId(alertId, level + 1), this.delay(level + 1), { alertId, level: level + 1 })
    }
    await this.alerts.escalate(alertId, level)
  }
}
