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
import type { Alert, RiskLevel, UnitRisk } from '../../schemas/alerts.js'
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

  /** An alert listener: schedules the policies' timers of an alert that opened, drops them once it is resolved. */
  readonly onAlertChange = async (alert: Alert, change: AlertChange): Promise<void> => {
    // Alerts of devices in test mode are kept out of enforcement as they are out of statistics.
    if (alert.class === 'test') return
    if (alert.status === 'resolved') {
      // Best effort: the timer re-checks anyway; this only spares Redis a day of dead timers.
      for (const p of alertPolicies(this.cases.policy, alert)) await this.jobs.cancel('timers', jobId('case-trigger', p.id, alert.id))
      return
    }
    if (change !== 'opened') return
    for (const p of alertPolicies(this.cases.policy, alert)) {
      const delay = Date.parse(alert.firstSeen) + p.alertOpen!.forMs - Date.now()
      await this.jobs.schedule('timers', TRIGGER_JOB, jobId('case-trigger', p.id, alert.id), delay, { policy: p.id, alertId: alert.id })
    }
  }

  /** The timer of one (policy, alert): open or join the case if the alert is still unresolved and not yet in one. */
  async onTimer(policyId: string, alertId: string): Promise<void> {
    const p = this.cases.policy.policies.find((x) => x.id === policyId)
    if (!p?.alertOpen) return // the policy was removed or disabled since
    const alert = await this.alerts.get(alertId)
    if (!alert || alert.status === 'resolved') return
    // Already followed up under this policy (a retry, a second instance): a closed case is not reopened as a new one.
    const { rowCount } = await this.pool.query('SELECT 1 FROM case_alerts ca JOIN cases k ON k.id = ca.case_id WHERE ca.alert_id = $1 AND k.policy = $2', [alertId, p.id])
    if (rowCount) return
    const categories = p.alertOpen.unitCategories
    if (categories) {
      const { rows } = await this.pool.query<{ category: string }>('SELECT category FROM units WHERE id = $1', [alert.unitId])
      if (!rows[0] || !categories.includes(rows[0].category as (typeof categories)[number])) return
    }
    const { case: k, created } = await this.open(p, alert.unitId, `alert ${alert.id} (${alert.title}) unresolved since ${alert.firstSeen}`, [alert.id])
    this.log.info({ caseId: k.id, policy: p.id, alertId, created }, created ? 'case opened by policy' : 'alert linked to the open case')
  }

  /**
   * Catch-up (the credit sweep runs it): alerts unresolved past a policy's time with no case of that policy — opened
   * before the policy existed or changed, or whose timer was never scheduled — get their timer's check now.
   */
  async sweep(now = Date.now()): Promise<void> {
    for (const p of this.cases.policy.policies) {
      const t = p.alertOpen
      if (!t) continue
      const { rows } = await this.pool.query<{ id: string }>(
        `SELECT a.id FROM alerts a JOIN units u ON u.id = a.unit_id
         WHERE a.status <> 'resolved' AND a.class <> 'test' AND a.first_seen <= $1
           AND ($2::text[] IS NULL OR a.class = ANY ($2)) AND ($3::text[] IS NULL OR a.rule_id = ANY ($3))
           AND ($4::text[] IS NULL OR u.category = ANY ($4))
           AND NOT EXISTS (SELECT 1 FROM case_alerts ca JOIN cases k ON k.id = ca.case_id WHERE ca.alert_id = a.id AND k.policy = $5)
         ORDER BY a.id LIMIT 1000`,
        [new Date(now - t.forMs), t.classes ?? null, t.rules ?? null, t.unitCategories ?? null, p.id]
      )
      for (const r of rows) await this.onTimer(p.id, String(r.id))
    }
  }

  /**
   * A risk-score listener: a level reaching a policy's (from below it, or the unit's first score) opens its case.
   * A level that stays up opens nothing more, also once its case is closed: only reaching the level again does.
   */
  readonly onRisk = async (risk: UnitRisk, previous: RiskLevel | null): Promise<void> => {
    const before = new Set(previous ? riskPolicies(this.cases.policy, previous).map((p) => p.id) : [])
    for (const p of riskPolicies(this.cases.policy, risk.level)) {
      if (before.has(p.id)) continue
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
