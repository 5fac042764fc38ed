/**
 * The case lifecycle: open → assigned → rectification_submitted → verified → closed, or overdue when the deadline
 * passes (a BullMQ delayed job per case, explicit id, re-checked when it fires). Every step goes through
 * CaseRepository.change, so it is recorded with actor, time, comment and attachment references, and audited.
 */
import type pg from 'pg'
import type { Logger } from '../logger.js'
import { FirewatchError } from '../errors.js'
import { jobId, type Jobs } from '../rules/jobs.js'
import type { Attachment, Case, CaseStatus, Evidence } from '../../schemas/cases.js'
import { caseNotFound, toCase, type CaseRepository, type Recording } from './case-repository.js'
import type { CreditService } from './credit-service.js'
import type { EvidenceCollector } from './evidence.js'
import type { CaseSeverity, FollowUpPolicy } from './policy.js'

export const OVERDUE_JOB = 'case-overdue'

export interface OpenInput {
  unitId: string
  /** The policy's id; null for a case opened by hand. */
  policy: string | null
  severity: CaseSeverity
  title: string
  description?: string
  deadline: Date
  actor: string
  alertIds?: string[]
  comment?: string | null
  attachments?: Attachment[]
}

export interface StepInput {
  actor: string
  comment?: string | null
  attachments?: Attachment[]
}

const stateError = (k: Case, step: string) =>
  new FirewatchError('FW_ERR_CASE_STATE', `case ${k.id} is ${k.status}: it cannot be ${step}`, { statusCode: 409 })

/**
 * Nearest jurisdiction first (deepest in the unit's path), then the fewest cases still to follow up. An inspector with
 * a conflict of interest recorded against the unit (回避, src/inspections/conflict-repository.ts) never qualifies.
 */
const PICK_INSPECTOR = `
SELECT us.id FROM users us
CROSS JOIN (SELECT j.ancestors FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.id = $1) p
WHERE us.role = 'inspector' AND NOT us.disabled AND us.jurisdiction_id = ANY (p.ancestors) AND ($2::text IS NULL OR us.id = $2)
  AND NOT EXISTS (SELECT 1 FROM unit_conflicts c WHERE c.unit_id = $1 AND c.user_id = us.id)
ORDER BY array_position(p.ancestors, us.jurisdiction_id) DESC,
         (SELECT count(*) FROM cases k WHERE k.assignee = us.id AND k.status NOT IN ('verified', 'closed')),
         us.id
LIMIT 1`

export class CaseService {
  constructor(
    readonly repo: CaseRepository,
    private readonly credit: CreditService,
    private readonly evidence: EvidenceCollector,
    private readonly jobs: Jobs,
    readonly policy: FollowUpPolicy,
    private readonly log: Logger
  ) {}

  /**
   * Open a case, or for a policy with a case still open in the unit, link the alerts to that one. A new case is
   * assigned to an inspector at once when one covers the unit; its overdue timer is scheduled after the commit.
   */
  async open(input: OpenInput): Promise<{ case: Case; created: boolean }> {
    // Row locks first, the recording (whose audit entry takes the audit trail's lock) last: every transaction that
    // writes the audit trail acquires its locks in this order, so none waits for another holding the trail.
    const result = await this.repo.tx(async (c) => {
      // Serialises the unit's openings (the repeated-violations count); NO KEY so alerts' foreign keys do not wait.
      await c.query('SELECT 1 FROM units WHERE id = $1 FOR NO KEY UPDATE', [input.unitId])
      const { rows } = await c.query(
        `INSERT INTO cases (unit_id, policy, severity, title, description, opened_by, deadline) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (unit_id, policy) WHERE policy IS NOT NULL AND status <> 'closed' DO NOTHING RETURNING *`,
        [input.unitId, input.policy, input.severity, input.title, input.description ?? '', input.actor, input.deadline]
      )
      if (!rows[0]) {
        const existing = await c.query("SELECT * FROM cases WHERE unit_id = $1 AND policy = $2 AND status <> 'closed' FOR UPDATE", [input.unitId, input.policy])
        const k = toCase(existing.rows[0] as Record<string, unknown>)
        for (const alertId of await this.link(c, k, input.alertIds ?? [])) await this.repo.record(c, k, k.status, { action: 'alert_linked', actor: input.actor, data: { alertId } })
        return { case: k, created: false }
      }
      const opened = toCase(rows[0] as Record<string, unknown>)
      const linked = await this.link(c, opened, input.alertIds ?? [])
      const inspector = await c.query<{ id: string }>(PICK_INSPECTOR, [opened.unitId, null])
      let k = opened
      if (inspector.rows[0]) {
        const { rows: assigned } = await c.query("UPDATE cases SET status = 'assigned', assignee = $2, assigned_at = now(), updated_at = now() WHERE id = $1 RETURNING *", [k.id, inspector.rows[0].id])
        k = toCase(assigned[0] as Record<string, unknown>)
      }
      const repeated = await this.credit.onCaseOpened(c, k)
      await this.repo.record(c, opened, null, { action: 'opened', actor: input.actor, comment: input.comment, attachments: input.attachments, data: { policy: input.policy, severity: input.severity, deadline: k.deadline } })
      for (const alertId of linked) await this.repo.record(c, opened, opened.status, { action: 'alert_linked', actor: input.actor, data: { alertId } })
      if (k.assignee) await this.repo.record(c, k, 'open', { action: 'assigned', actor: 'system', data: { assignee: k.assignee, by: 'nearest inspector with the fewest open cases' } })
      await repeated?.record()
      return { case: k, created: true }
    })
    if (result.created) await this.scheduleOverdue(result.case)
    return result
  }

  /** Link alerts to the case; returns those not linked before. */
  private async link(c: pg.PoolClient, k: Case, alertIds: string[]): Promise<string[]> {
    const added: string[] = []
    for (const alertId of alertIds) {
      const { rowCount } = await c.query('INSERT INTO case_alerts (case_id, alert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [k.id, alertId])
      if (rowCount) added.push(alertId)
    }
    return added
  }

  async scheduleOverdue(k: Case): Promise<void> {
    await this.jobs.schedule('timers', OVERDUE_JOB, jobId('case-overdue', k.id), Date.parse(k.deadline) - Date.now(), { caseId: k.id })
  }

  /** The overdue timer: re-checks the case; one verified, closed or already overdue is left alone. */
  async markOverdue(caseId: string, now = Date.now()): Promise<Case | null> {
    const { case: k, changed } = await this.repo.change(
      caseId,
      async (cur) => {
        // A rectification submitted in time is the unit's part done: only a refusal after the deadline makes it overdue.
        if (cur.overdueAt || ['verified', 'closed', 'rectification_submitted'].includes(cur.status) || Date.parse(cur.deadline) > now) return null
        return { status: 'overdue', set: { overdue_at: new Date(now) }, action: 'overdue', actor: 'system', data: { deadline: cur.deadline } }
      },
      (next, c) => this.overdueCredit(next, c)
    )
    return changed ? k : null
  }

  private async overdueCredit(k: Case, c: pg.PoolClient): Promise<Recording[]> {
    if (k.severity !== 'major') return []
    const added = await this.credit.add(c, k, 'overdue_major', `major hazard not rectified by ${k.deadline} (case ${k.id}: ${k.title})`, 'system')
    return added ? [added.record] : []
  }

  async assign(caseId: string, assignee: string, s: StepInput): Promise<Case> {
    return (
      await this.repo.change(caseId, async (cur, c) => {
        if (['verified', 'closed'].includes(cur.status)) throw stateError(cur, 'assigned')
        const ok = await c.query(PICK_INSPECTOR, [cur.unitId, assignee])
        if (!ok.rows[0]) {
          throw new FirewatchError('FW_ERR_VALIDATION', `user ${assignee} is not an active inspector of a jurisdiction covering unit ${cur.unitId} without a conflict recorded against it`, { statusCode: 400, field: 'assignee' })
        }
        const status: CaseStatus = cur.status === 'open' ? 'assigned' : cur.status
        return { status, set: { assignee, assigned_at: new Date() }, action: 'assigned', ...s, data: { assignee, previous: cur.assignee } }
      })
    ).case
  }

  async submit(caseId: string, s: StepInput): Promise<{ case: Case; evidence: Evidence[] }> {
    const cur = await this.mustGet(caseId)
    // Past the deadline and not yet marked (its timer late, lost or not run yet): the case went overdue first, with its
    // credit entry; a late rectification must not pass for one made in time, which the timer then leaves alone.
    if (!cur.overdueAt && Date.parse(cur.deadline) <= Date.now()) await this.markOverdue(caseId)
    const evidence = await this.evidence.collect(caseId, cur.unitId)
    const { case: k } = await this.repo.change(caseId, async (now) => {
      if (!['open', 'assigned', 'overdue'].includes(now.status)) throw stateError(now, 'submitted')
      return { status: 'rectification_submitted', set: { submitted_at: new Date(), evidence, evidence_at: new Date() }, action: 'submitted', ...s, data: { evidence } }
    })
    return { case: k, evidence }
  }

  async verify(caseId: string, s: StepInput): Promise<{ case: Case; evidence: Evidence[] }> {
    const cur = await this.mustGet(caseId)
    const evidence = await this.evidence.collect(caseId, cur.unitId)
    const { case: k } = await this.repo.change(caseId, async (now) => {
      if (now.status !== 'rectification_submitted') throw stateError(now, 'verified')
      return { status: 'verified', set: { verified_at: new Date(), verified_by: s.actor, evidence, evidence_at: new Date() }, action: 'verified', ...s, data: { evidence } }
    })
    await this.jobs.cancel('timers', jobId('case-overdue', k.id))
    return { case: k, evidence }
  }

  /** Verification refused: back to the inspector (overdue if the deadline has passed); a credit entry for the unit. */
  async reject(caseId: string, s: StepInput): Promise<Case> {
    const now = Date.now()
    return (
      await this.repo.change(
        caseId,
        async (cur) => {
          if (cur.status !== 'rectification_submitted') throw stateError(cur, 'rejected')
          const late = Date.parse(cur.deadline) <= now
          const status: CaseStatus = late ? 'overdue' : cur.assignee ? 'assigned' : 'open'
          return { status, set: late && !cur.overdueAt ? { overdue_at: new Date(now) } : {}, action: 'rejected', ...s, data: { late } }
        },
        async (next, c) => {
          const refused = await this.credit.add(c, next, 'refused_rectification', `rectification refused by ${s.actor} (case ${next.id}: ${next.title})`, s.actor)
          const overdue = next.status === 'overdue' ? await this.overdueCredit(next, c) : []
          return [...(refused ? [refused.record] : []), ...overdue]
        }
      )
    ).case
  }

  async close(caseId: string, s: StepInput): Promise<Case> {
    return (
      await this.repo.change(caseId, async (cur) => {
        if (cur.status !== 'verified') throw stateError(cur, 'closed')
        return { status: 'closed', set: { closed_at: new Date() }, action: 'closed', ...s }
      })
    ).case
  }

  /** Recompute the evidence of a case still being followed up (the inspector opening it) and keep it. */
  async refreshEvidence(k: Case): Promise<Case> {
    if (['verified', 'closed'].includes(k.status)) return k
    const evidence = await this.evidence.collect(k.id, k.unitId)
    const { rows } = await this.repo.pool.query('UPDATE cases SET evidence = $2, evidence_at = now() WHERE id = $1 RETURNING *', [k.id, JSON.stringify(evidence)])
    return toCase(rows[0] as Record<string, unknown>)
  }

  /** Cases past their deadline whose timer was lost (scheduled after a commit that a crash interrupted). */
  async sweepOverdue(now = Date.now()): Promise<void> {
    const { rows } = await this.repo.pool.query<{ id: string }>(
      "SELECT id FROM cases WHERE deadline <= $1 AND overdue_at IS NULL AND status IN ('open', 'assigned')",
      [new Date(now)]
    )
    for (const r of rows) await this.markOverdue(String(r.id), now).catch((err) => this.log.warn({ err, caseId: r.id }, 'overdue check failed'))
  }

  private async mustGet(id: string): Promise<Case> {
    const k = await this.repo.get(id)
    if (!k) throw caseNotFound(id)
    return k
  }
}
