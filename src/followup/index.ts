/**
 * Follow-up (enforcement): risk warnings become cases for inspectors, with deadlines, rectification evidence from the
 * devices and unit credit records. Built in every thread that changes alerts (runtime.ts); the BullMQ handlers —
 * policy timers, overdue timers, the credit sweep — only where the jobs run.
 */
import type { Logger } from '../logger.js'
import type { Pool } from '../store/postgres.js'
import type { InfluxStore } from '../store/influx.js'
import type { AlertService } from '../alerts/alert-service.js'
import type { RiskService } from '../alerts/risk.js'
import type { Jobs } from '../rules/jobs.js'
import type { AuditRecorder } from './audit.js'
import { CaseRepository } from './case-repository.js'
import { CaseService, OVERDUE_JOB } from './case-service.js'
import { CreditService } from './credit-service.js'
import { EvidenceCollector } from './evidence.js'
import { CaseTriggers, TRIGGER_JOB } from './triggers.js'
import type { FollowUpPolicy } from './policy.js'

export const SWEEP_JOB = 'credit-sweep'

export interface FollowUp {
  cases: CaseService
  credit: CreditService
  triggers: CaseTriggers
  /** Apply the policy's credit threshold; with `jobs`, schedule the credit sweep. */
  start(jobs: boolean): Promise<void>
  /** The credit sweep: lost overdue timers, then credit repair. */
  sweep(now?: Date): Promise<void>
}

export function buildFollowUp(o: {
  pool: Pool
  store: InfluxStore
  jobs: Jobs
  alerts: AlertService
  risk: RiskService
  policy: FollowUpPolicy
  log: Logger
  /** The audit trail; null until src/audit/ is available. */
  audit: AuditRecorder | null
  handleJobs: boolean
}): FollowUp {
  const credit = new CreditService(o.pool, o.policy, o.audit)
  const cases = new CaseService(new CaseRepository(o.pool, o.audit), credit, new EvidenceCollector(o.pool, o.store, o.policy.evidence), o.jobs, o.policy, o.log)
  const triggers = new CaseTriggers(o.pool, o.alerts, cases, o.jobs, o.log)
  o.alerts.on('followup', triggers.onAlertChange)
  o.risk.onScore(triggers.onRisk)
  const followUp: FollowUp = {
    cases,
    credit,
    triggers,
    async start(jobs) {
      await credit.syncThreshold()
      if (jobs) await o.jobs.every('timers', SWEEP_JOB, o.policy.credit.sweepEveryS * 1000)
    },
    async sweep(now = new Date()) {
      await cases.sweepOverdue(now.getTime())
      const repaired = await credit.repair(now)
      if (repaired.length > 0) o.log.info({ entries: repaired.map((e) => e.id) }, 'credit entries repaired')
    }
  }
  if (o.handleJobs) {
    o.jobs.handle('timers', TRIGGER_JOB, (data) => triggers.onTimer(String(data.policy), String(data.alertId)))
    o.jobs.handle('timers', OVERDUE_JOB, async (data) => {
      await cases.markOverdue(String(data.caseId))
    })
    o.jobs.handle('timers', SWEEP_JOB, () => followUp.sweep())
  }
  return followUp
}
