/**
 * Risk warnings that open cases (rules/followup/policy.yaml `policies`). An alert-open policy schedules a delayed job
 * per (policy, alert) when the alert opens, with an explicit id; when it fires it re-checks that the alert is still
 * unresolved and the unit of the right category, then opens the policy's case or links the alert to the open one.
 * A risk-level policy acts when a unit's computed score reaches the level.
 */
import type { Logger } from '../logger.js'
import type { Pool } from '../store/postgres.js'
import type { AlertService } from '../alerts/alert-service.js'
import type { AlertChange } from '../alerts/alert-repository.js'
import type { Alert, UnitRisk } from '../../schemas/alerts.js'
import { jobId, type Jobs } from '../rules/jobs.js'
import { alertPolicies, riskPolicies, type Policy } from './policy.js'
import type { CaseService } from './case-service.js'

export const TRIGGER_JOB = 'case-trigger'

export class CaseTriggers {
  constructor(
    private readonly pool: Pool,
    private readonly alerts: AlertService,
    private readonly cases: CaseService,
    private readonly jobs: Jobs,
    private readonly log: Logger
  ) {}

  /** An alert listener: schedules the policies' timers of an alert that opened. */
  readonly onAlertChange = async (alert: Alert, change: AlertChange): Promise<void> => {
    // Alerts of devices in test mode are kept out of enforcement as they are out of statistics.
    if (change !== 'opened' || alert.class === 'test') return
    for (const p of alertPolicies(this.cases.policy, alert)) {
      const delay = Date.parse(alert.firstSeen) + p.alertOpen!.forMs - Date.now()
      await this.jobs.schedule('timers', TRIGGER_JOB, jobId('case-trigger', p.id, alert.id), delay, { policy: p.id, alertId: alert.id })
    }
  }

  /** The timer of one (policy, alert): open or join the case if the alert is still unresolved. */
  async onTimer(policyId: string, alertId: string): Promise<void> {
    const p = this.cases.policy.policies.find((x) => x.id === policyId)
    if (!p?.alertOpen) return // the policy was removed or disabled since
    const alert = await this.alerts.get(alertId)
    if (!alert || alert.status === 'resolved') return
    const categories = p.alertOpen.unitCategories
    if (categories) {
      const { rows } = await this.pool.query<{ category: string }>('SELECT category FROM units WHERE id = $1', [alert.unitId])
      if (!rows[0] || !categories.includes(rows[0].category as (typeof categories)[number])) return
    }
    const { case: k, created } = await this.open(p, alert.unitId, `alert ${alert.id} (${alert.title}) unresolved since ${alert.firstSeen}`, [alert.id])
    this.log.info({ caseId: k.id, policy: p.id, alertId, created }, created ? 'case opened by policy' : 'alert linked to the open case')
  }

  /** A risk-score listener: a level reaching a policy's opens its case (once while it is open). */
  readonly onRisk = async (risk: UnitRisk): Promise<void> => {
    for (const p of riskPolicies(this.cases.policy, risk.level)) {
      const { case: k, created } = await this.open(p, risk.unitId, `risk score ${risk.score} (${risk.level}) at ${risk.computedAt}`, [])
      if (created) this.log.info({ caseId: k.id, policy: p.id, unitId: risk.unitId, level: risk.level }, 'case opened by risk level')
    }
  }

  private open(p: Policy, unitId: string, description: string, alertIds: string[]) {
    return this.cases.open({
      unitId,
      policy: p.id,
      severity: p.severity,
      title: p.titleZh ? `${p.title} / ${p.titleZh}` : p.title,
      description,
      deadline: new Date(Date.now() + p.deadlineMs),
      actor: 'system',
      alertIds
    })
  }
}
