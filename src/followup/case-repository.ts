/**
 * Cases in PostgreSQL: rows to API objects, reads scoped by jurisdiction subtree, and the one way a case changes:
 * {@link CaseRepository.change} locks the row, applies the step and records it in case_transitions (and the audit
 * trail, last: the trail's global lock is never held while waiting for a row) in the same transaction.
 */
import type pg from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import type { Attachment, Case, CaseStatus, CaseTransition, CasesQuery, Evidence } from '../../schemas/cases.js'
import type { AuditRecorder } from './audit.js'
import { FirewatchError } from '../errors.js'

type Row = Record<string, unknown>
export const caseNotFound = (id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `case ${id} does not exist`, { statusCode: 404 })
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null)

export function toCase(r: Row): Case {
  return {
    id: String(r.id),
    unitId: r.unit_id as string,
    policy: (r.policy as string | null) ?? null,
    status: r.status as CaseStatus,
    severity: r.severity as Case['severity'],
    title: r.title as string,
    description: r.description as string,
    openedAt: iso(r.opened_at)!,
    openedBy: r.opened_by as string,
    deadline: iso(r.deadline)!,
    assignee: (r.assignee as string | null) ?? null,
    assignedAt: iso(r.assigned_at),
    submittedAt: iso(r.submitted_at),
    verifiedAt: iso(r.verified_at),
    verifiedBy: (r.verified_by as string | null) ?? null,
    closedAt: iso(r.closed_at),
    overdueAt: iso(r.overdue_at),
    evidence: r.evidence as Evidence[],
    evidenceAt: iso(r.evidence_at)
  }
}

/** One recorded step. `actor` is the principal's name, or 'system'. */
export interface Step {
  action: string
  actor: string
  comment?: string | null
  attachments?: Attachment[]
  data?: Record<string, unknown>
}

/** An audit entry to write later in the same transaction, once every row it changes is written. */
export type Recording = () => Promise<void>

/** What a step changes: the new status and the columns it sets. */
export interface Change {
  status: CaseStatus
  set?: Record<string, unknown>
}

const SETTABLE = new Set(['assignee', 'assigned_at', 'submitted_at', 'verified_at', 'verified_by', 'closed_at', 'overdue_at', 'evidence', 'evidence_at', 'deadline'])

export class CaseRepository {
  constructor(
    readonly pool: Pool,
    private readonly audit: AuditRecorder | null
  ) {}

  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn)
  }

  async get(id: string, db: { query: pg.Pool['query'] } = this.pool): Promise<Case | null> {
    if (!/^[0-9]{1,18}$/.test(id)) return null
    const { rows } = await db.query('SELECT * FROM cases WHERE id = $1', [id])
    return rows[0] ? toCase(rows[0] as Row) : null
  }

  /** Lock the case, let `decide` pick the change from its current state (or throw), apply it and record the step. */
  async change(
    id: string,
    decide: (current: Case, c: pg.PoolClient) => Promise<(Change & Step) | null>,
    /**
     * More work of the same step, in its transaction (a credit entry). It changes rows only and returns the audit
     * recordings of what it added: they run after the step's own entry, so the trail's lock is taken last.
     */
    after?: (next: Case, c: pg.PoolClient) => Promise<Recording[]>
  ): Promise<{ case: Case; changed: boolean }> {
    if (!/^[0-9]{1,18}$/.test(id)) throw caseNotFound(id)
    return this.tx(async (c) => {
      const { rows } = await c.query('SELECT * FROM cases WHERE id = $1 FOR UPDATE', [id])
      if (!rows[0]) throw caseNotFound(id)
      const current = toCase(rows[0] as Row)
      const step = await decide(current, c)
      if (!step) return { case: current, changed: false }
      const cols = Object.entries(step.set ?? {})
      for (const [k] of cols) if (!SETTABLE.has(k)) throw new Error(`column ${k} is not settable`)
      const assignments = cols.map(([k], i) => `${k} = $${i + 3}`)
      const { rows: updated } = await c.query(
        `UPDATE cases SET status = $2, updated_at = now()${assignments.map((a) => `, ${a}`).join('')} WHERE id = $1 RETURNING *`,
        [id, step.status, ...cols.map(([k, v]) => (k === 'evidence' ? JSON.stringify(v) : v))]
      )
      const next = toCase(updated[0] as Row)
      // Every row first, then the audit entries: the case step's, then those of `after`, in the chain in that order.
      const recordings = after ? await after(next, c) : []
      await this.record(c, next, current.status, step)
      for (const r of recordings) await r()
      return { case: next, changed: true }
    })
  }

  /** Record a step in case_transitions and in the audit trail, inside the caller's transaction. */
  async record(c: pg.PoolClient, k: Case, from: CaseStatus | null, step: Step): Promise<void> {
    await c.query(
      'INSERT INTO case_transitions (case_id, action, actor, comment, from_status, to_status, attachments, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [k.id, step.action, step.actor, step.comment ?? null, from, k.status, JSON.stringify(step.attachments ?? []), JSON.stringify(step.data ?? {})]
    )
    if (this.audit) {
      const { rows } = await c.query<{ jurisdiction_id: string }>('SELECT jurisdiction_id FROM units WHERE id = $1', [k.unitId])
      await this.audit.record(
        {
          actor: step.actor,
          action: `case.${step.action}`,
          subjectKind: 'case',
          subjectId: k.id,
          jurisdictionId: rows[0]!.jurisdiction_id,
          detail: { unitId: k.unitId, from, to: k.status, ...(step.comment ? { comment: step.comment } : {}), ...(step.attachments?.length ? { attachments: step.attachments } : {}), ...(step.data ?? {}) }
        },
        c
      )
    }
  }

  async transitions(id: string): Promise<CaseTransition[]> {
    const { rows } = await this.pool.query('SELECT * FROM case_transitions WHERE case_id = $1 ORDER BY id', [id])
    return rows.map((r: Row) => ({
      id: String(r.id),
      at: iso(r.at)!,
      action: r.action as string,
      actor: r.actor as string,
      comment: (r.comment as string | null) ?? null,
      fromStatus: (r.from_status as string | null) ?? null,
      toStatus: r.to_status as string,
      attachments: r.attachments as Attachment[],
      data: r.data as Record<string, unknown>
    }))
  }

  async alerts(id: string) {
    const { rows } = await this.pool.query(
      `SELECT a.id, a.rule_id, a.class, a.title, a.status, a.active, a.device_id, ca.linked_at
       FROM case_alerts ca JOIN alerts a ON a.id = ca.alert_id WHERE ca.case_id = $1 ORDER BY ca.linked_at, a.id`,
      [id]
    )
    return rows.map((r: Row) => ({
      id: String(r.id),
      ruleId: r.rule_id as string,
      class: r.class as string,
      title: r.title as string,
      status: r.status as string,
      active: r.active as boolean,
      deviceId: r.device_id as string,
      linkedAt: iso(r.linked_at)!
    }))
  }

  /** `scope`: cases of units in that subtree only; null: every case. */
  async list(q: CasesQuery, scope: string | null): Promise<{ items: Case[]; total: number }> {
    const where: string[] = []
    const args: unknown[] = []
    const arg = (v: unknown) => {
      args.push(v)
      return `$${args.length}`
    }
    if (scope !== null) where.push(`c.unit_id IN (SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE ${arg(scope)} = ANY (j.ancestors))`)
    if (q.status) where.push(`c.status = ${arg(q.status)}`)
    if (q.unitId) where.push(`c.unit_id = ${arg(q.unitId)}`)
    if (q.assignee) where.push(`c.assignee = ${arg(q.assignee)}`)
    if (q.overdue !== undefined) where.push(q.overdue ? 'c.overdue_at IS NOT NULL' : 'c.overdue_at IS NULL')
    const w = where.length ? `WHERE ${where.join(' AND ')}` : ''
    const { rows } = await this.pool.query(
      `SELECT c.*, count(*) OVER () AS total FROM cases c ${w} ORDER BY c.opened_at DESC, c.id DESC LIMIT ${arg(q.limit)} OFFSET ${arg(q.offset)}`,
      args
    )
    const total = rows[0] ? Number((rows[0] as Row).total) : q.offset > 0 ? (await this.pool.query(`SELECT count(*)::int AS n FROM cases c ${w}`, args.slice(0, -2))).rows[0].n : 0
    return { items: rows.map((r: Row) => toCase(r)), total }
  }
}
