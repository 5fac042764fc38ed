/**
 * Credit records (rules/followup/policy.yaml `credit`): entries added by the case lifecycle — an overdue major-hazard
 * case, a refused rectification, repeated violations — and repaired by the sweep once the case is verified and the
 * unit has had a clean period. Entries are never deleted: repair marks them, the history stays.
 */
import type pg from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import type { Case, CreditEntry, CreditKind, CreditStandingReply } from '../../schemas/cases.js'
import type { FollowUpPolicy } from './policy.js'
import type { AuditRecorder } from './audit.js'
import { creditStanding } from './credit.js'

type Row = Record<string, unknown>
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null)
const DAY_S = 86400
const span = (s: number) => (s % DAY_S === 0 ? `${s / DAY_S} d` : `${s} s`)

/** An entry just added, and the recording of its audit entry, which the caller runs last in its transaction. */
export interface AddedEntry {
  entry: CreditEntry
  record: () => Promise<void>
}

function toEntry(r: Row): CreditEntry {
  return {
    id: String(r.id),
    unitId: r.unit_id as string,
    kind: r.kind as CreditKind,
    points: r.points as number,
    reason: r.reason as string,
    caseId: r.case_id === null ? null : String(r.case_id),
    createdAt: iso(r.created_at)!,
    repairedAt: iso(r.repaired_at),
    repairReason: (r.repair_reason as string | null) ?? null
  }
}

export class CreditService {
  constructor(
    private readonly pool: Pool,
    private readonly policy: FollowUpPolicy,
    private readonly audit: AuditRecorder | null
  ) {}

  /**
   * Make the threshold of the policy file the one every reader of the standing applies. A change lists or delists
   * units as dishonest, so it is in the audit trail (`credit.threshold_changed`, system-wide) with the old and new value.
   */
  async syncThreshold(): Promise<void> {
    const to = this.policy.credit.dishonestPoints
    await withTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ from: number }>(
        `UPDATE credit_policy p SET dishonest_points = $1, updated_at = now() FROM (SELECT dishonest_points FROM credit_policy FOR UPDATE) old
         WHERE p.dishonest_points <> $1 RETURNING old.dishonest_points AS from`,
        [to]
      )
      if (rows[0] && this.audit) {
        await this.audit.record({ actor: 'system', action: 'credit.threshold_changed', subjectKind: 'credit_policy', subjectId: 'dishonest_points', jurisdictionId: null, detail: { from: rows[0].from, to } }, c)
      }
    })
  }

  /**
   * Add an entry inside the caller's transaction; an overdue entry is added once per case. Returns it with `record`,
   * which writes its audit entry and must run after every row the transaction changes (see audit-log.ts), or null.
   */
  async add(c: pg.PoolClient, k: Pick<Case, 'id' | 'unitId'>, kind: CreditKind, reason: string, actor: string): Promise<AddedEntry | null> {
    const points = { overdue_major: this.policy.credit.points.overdueMajor, refused_rectification: this.policy.credit.points.refusedRectification, repeated_violations: this.policy.credit.points.repeatedViolations }[kind]
    const { rows } = await c.query(
      `INSERT INTO credit_entries (unit_id, kind, points, reason, case_id) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (case_id) WHERE kind = 'overdue_major' DO NOTHING RETURNING *`,
      [k.unitId, kind, points, reason, k.id]
    )
    if (!rows[0]) return null
    const entry = toEntry(rows[0] as Row)
    return { entry, record: () => this.audited(c, actor, 'credit.entry_added', entry, { kind, points, reason, caseId: k.id }) }
  }

  /** Repeated violations (inside the opening's transaction): a case opening makes `cases` within `withinS` → one entry per window. */
  async onCaseOpened(c: pg.PoolClient, k: Case): Promise<AddedEntry | null> {
    const { cases, withinS } = this.policy.credit.repeatedViolations
    // The caller holds the unit's row lock (CaseService.open), so two cases opening together add one entry.
    const { rows } = await c.query<{ n: number; recent: number }>(
      `SELECT (SELECT count(*)::int FROM cases WHERE unit_id = $1 AND opened_at > now() - make_interval(secs => $2)) AS n,
              (SELECT count(*)::int FROM credit_entries WHERE unit_id = $1 AND kind = 'repeated_violations' AND created_at > now() - make_interval(secs => $2)) AS recent`,
      [k.unitId, withinS]
    )
    const { n, recent } = rows[0]!
    if (n < cases || recent > 0) return null
    return this.add(c, k, 'repeated_violations', `repeated violations: ${n} cases within ${span(withinS)} (case ${k.id}: ${k.title})`, 'system')
  }

  /**
   * Credit repair: the entries of a verified case are repaired once neither the verification nor any entry of the
   * unit is more recent than the clean period. `now` may be later than the clock (tests, a catch-up).
   */
  async repair(now = new Date()): Promise<CreditEntry[]> {
    const cleanS = this.policy.credit.repairAfterCleanS
    return withTransaction(this.pool, async (c) => {
      const { rows } = await c.query(
        `UPDATE credit_entries e
         SET repaired_at = $1::timestamptz,
             repair_reason = 'case ' || k.id || ' verified ' || to_char(k.verified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '; no new entry for ' || $3
         FROM cases k
         WHERE e.case_id = k.id AND e.repaired_at IS NULL AND k.verified_at IS NOT NULL
           AND greatest(k.verified_at, (SELECT max(x.created_at) FROM credit_entries x WHERE x.unit_id = e.unit_id)) <= $1::timestamptz - make_interval(secs => $2)
         RETURNING e.*`,
        [now, cleanS, span(cleanS)]
      )
      const repaired = rows.map((r: Row) => toEntry(r))
      for (const e of repaired) await this.audited(c, 'system', 'credit.entry_repaired', e, { kind: e.kind, caseId: e.caseId, reason: e.repairReason })
      return repaired
    })
  }

  /** Units with credit entries in the scope, worst first; `dishonest` filters on the standing. */
  async list(scope: string | null, q: { dishonest?: boolean; limit: number; offset: number }): Promise<{ items: CreditStandingReply[]; total: number }> {
    const { rows } = await this.pool.query<{ unit_id: string }>(
      `SELECT DISTINCT e.unit_id FROM credit_entries e JOIN units u ON u.id = e.unit_id JOIN jurisdictions j ON j.id = u.jurisdiction_id
       WHERE $1::text IS NULL OR $1 = ANY (j.ancestors)`,
      [scope]
    )
    const all = await this.standings(rows.map((r) => r.unit_id))
    const wanted = all.filter((s) => q.dishonest === undefined || s.dishonest === q.dishonest).sort((a, b) => b.points - a.points || a.unitId.localeCompare(b.unitId))
    return { items: wanted.slice(q.offset, q.offset + q.limit), total: wanted.length }
  }

  async unitExists(unitId: string): Promise<boolean> {
    return ((await this.pool.query('SELECT 1 FROM units WHERE id = $1', [unitId])).rowCount ?? 0) > 0
  }

  /** A unit's standing with every entry, newest first. */
  async unit(unitId: string): Promise<CreditStandingReply & { entries: CreditEntry[] }> {
    const [standing] = await this.standings([unitId])
    const { rows } = await this.pool.query('SELECT * FROM credit_entries WHERE unit_id = $1 ORDER BY created_at DESC, id DESC', [unitId])
    return { ...standing!, entries: rows.map((r: Row) => toEntry(r)) }
  }

  private async standings(unitIds: string[]): Promise<CreditStandingReply[]> {
    const standing = await creditStanding(this.pool, unitIds)
    const { rows } = await this.pool.query<{ unit_id: string; reasons: string[] }>(
      `SELECT unit_id, array_agg(reason ORDER BY created_at, id) AS reasons FROM credit_entries
       WHERE unit_id = ANY ($1::text[]) AND repaired_at IS NULL GROUP BY unit_id`,
      [unitIds]
    )
    const reasons = new Map(rows.map((r) => [r.unit_id, r.reasons]))
    const threshold = (await this.pool.query<{ p: number }>('SELECT dishonest_points AS p FROM credit_policy')).rows[0]?.p ?? this.policy.credit.dishonestPoints
    return unitIds.map((unitId) => {
      const s = standing.get(unitId) ?? { dishonest: false, points: 0, activeEntries: 0 }
      return { unitId, ...s, threshold, reasons: reasons.get(unitId) ?? [] }
    })
  }

  private async audited(c: pg.PoolClient, actor: string, action: string, e: CreditEntry, detail: Record<string, unknown>): Promise<void> {
    if (!this.audit) return
    const { rows } = await c.query<{ jurisdiction_id: string }>('SELECT jurisdiction_id FROM units WHERE id = $1', [e.unitId])
    await this.audit.record({ actor, action, subjectKind: 'credit_entry', subjectId: e.id, jurisdictionId: rows[0]!.jurisdiction_id, detail: { unitId: e.unitId, ...detail } }, c)
  }
}
