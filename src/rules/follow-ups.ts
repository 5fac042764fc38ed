/**
 * The rules about units rather than one device's messages: an isolation past its expiry, too many false alarms in a
 * day. They follow alert changes (whoever made them: the rule engine, or an operator through the API) and the
 * periodic sweep; none of them touches a device's rule state, so they run in any thread.
 */
import type { Alert } from '../../schemas/alerts.js'
import type { AlertService } from '../alerts/alert-service.js'
import { jobId, type Jobs } from './jobs.js'
import type { CompiledRule, RuleSet } from './rule-set.js'

export class RuleFollowUps {
  constructor(
    private readonly alerts: AlertService,
    private readonly jobs: Jobs,
    private readonly rules: RuleSet
  ) {}

  /** Listen to an AlertService, and handle the isolation-expiry timers when this thread runs the jobs. */
  attach(handleJobs: boolean): void {
    this.alerts.on('rule-follow-ups', (alert, change) => this.onAlertChange(alert, change))
    if (handleJobs) this.jobs.handle('timers', 'isolation-expiry', (data) => this.checkIsolation(String(data.alertId)))
  }

  async sweep(now = Date.now()): Promise<void> {
    await this.sweepIsolations()
    await this.sweepFalseAlarms(now)
  }

  async sweepIsolations(): Promise<void> {
    const rules = this.rules.withLeaf('isolationExpired')
    if (rules.length === 0) return
    const expired = await this.alerts.repo.expiredIsolations(new Date())
    for (const iso of expired) await this.checkIsolation(iso.id)
    // Clear expiry troubles whose isolation was lifted or extended.
    for (const rule of rules) {
      for (const a of await this.alerts.repo.openByRule(rule.id)) await this.checkIsolation(String(a.detail.isolationAlertId ?? ''), a)
    }
  }

  /** Raise or clear the expiry trouble of one isolation alert. */
  async checkIsolation(isolationId: string, trouble?: Alert): Promise<void> {
    const iso = isolationId ? await this.alerts.get(isolationId) : null
    const expired = !!iso && iso.status !== 'resolved' && !!iso.isolationExpiresAt && Date.parse(iso.isolationExpiresAt) <= Date.now()
    for (const rule of this.rules.withLeaf('isolationExpired')) {
      const unitId = iso?.unitId ?? trouble?.unitId
      if (!unitId) continue
      const r = this.rules.forUnit(rule.id, unitId)
      if (!r) continue
      const key = { unitId, deviceId: iso?.deviceId ?? trouble!.deviceId, point: iso?.point ?? trouble!.point, ruleId: r.id }
      if (expired) {
        await this.alerts.raise({
          ...key,
          class: r.class,
          troubleType: r.troubleType,
          severity: r.severity,
          title: r.title,
          detail: { isolationAlertId: iso.id, owner: iso.isolationOwner, expiredAt: iso.isolationExpiresAt, ...(r.titleZh ? { titleZh: r.titleZh } : {}) },
          at: new Date()
        })
      } else {
        await this.alerts.clear(key, new Date(), { reason: iso ? (iso.status === 'resolved' ? 'isolation lifted' : 'expiry extended') : 'isolation gone' })
      }
    }
  }

  async sweepFalseAlarms(now: number): Promise<void> {
    for (const rule of this.rules.withLeaf('falseAlarms')) {
      const leaf = rule.when as Extract<CompiledRule['when'], { kind: 'falseAlarms' }>
      const counts = await this.alerts.repo.unitsWithFalseAlarms(new Date(now - leaf.withinS * 1000))
      const byUnit = new Map(counts.map((c) => [c.unitId, c.count]))
      for (const [unitId, n] of byUnit) {
        const own = this.rules.forUnit(rule.id, unitId)
        // The common case needs no second query: the file's rule, and a count at or below its limit.
        if (own === rule && n <= leaf.moreThan && !(await this.alerts.repo.getOpen({ unitId, deviceId: '', point: '', ruleId: rule.id }))) continue
        await this.checkFalseAlarms(rule.id, unitId, now)
      }
      for (const a of await this.alerts.repo.openByRule(rule.id)) if (!byUnit.has(a.unitId)) await this.checkFalseAlarms(rule.id, a.unitId, now)
    }
  }

  async checkFalseAlarms(ruleId: string, unitId: string, now = Date.now()): Promise<void> {
    const rule = this.rules.forUnit(ruleId, unitId)
    // A sweep may be asked about a later moment (tests, a catch-up); the alert's own times are never in the future.
    const at = new Date(Math.min(now, Date.now()))
    if (!rule || rule.when.kind !== 'falseAlarms') return
    const count = await this.alerts.repo.countFalseAlarms(unitId, new Date(now - rule.when.withinS * 1000))
    const key = { unitId, deviceId: '', point: '', ruleId }
    if (count > rule.when.moreThan) {
      await this.alerts.raise({
        ...key,
        class: rule.class,
        troubleType: rule.troubleType,
        severity: rule.severity,
        title: rule.title,
        detail: { falseAlarms: count, withinS: rule.when.withinS, ...(rule.titleZh ? { titleZh: rule.titleZh } : {}) },
        at
      })
    } else {
      await this.alerts.clear(key, at, { falseAlarms: count })
    }
  }

  /** Follow-on work of an alert change: isolation expiry timers, the expiry trouble, false-alarm counts. */
  async onAlertChange(alert: Alert, change: string): Promise<void> {
    if (alert.class === 'isolation' && (change === 'opened' || change === 'isolation_set') && alert.isolationExpiresAt) {
      const at = Date.parse(alert.isolationExpiresAt)
      await this.jobs.schedule('timers', 'isolation-expiry', jobId('iso', alert.id, at), at - Date.now(), { alertId: alert.id })
    }
    if (alert.class === 'isolation' && (change === 'cleared' || change === 'resolved' || change === 'isolation_set')) {
      // Lifted or extended: an expiry trouble raised for it clears.
      const trouble = this.rules.withLeaf('isolationExpired')[0]
      if (trouble) {
        const open = await this.alerts.repo.getOpen({ unitId: alert.unitId, deviceId: alert.deviceId, point: alert.point, ruleId: trouble.id })
        if (open) await this.checkIsolation(alert.id, open)
      }
    }
    if (change === 'resolved' && alert.disposition === 'false_alarm') {
      for (const rule of this.rules.withLeaf('falseAlarms')) await this.checkFalseAlarms(rule.id, alert.unitId)
    }
  }
}
