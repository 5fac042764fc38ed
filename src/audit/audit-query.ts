/**
 * Reading the audit trail, scoped like everything else: a caller bound to a jurisdiction sees the entries of its
 * subtree only; system-wide entries (no jurisdiction: users of the whole system, cities) only callers bound to none.
 */
import type { AuditQuery } from '../../schemas/audit.js'
import { TIME_TEXT } from './canonical.js'
import type { AuditEntry, Queryable } from './audit-log.js'

/** A stored row as read back: seq as text (bigint), time in the canonical rendering the hash covers. */
export interface EntryRow {
  seq: string
  time: string
  actor: string
  action: string
  subject_kind: string
  subject_id: string
  jurisdiction_id: string | null
  detail: string
  prev_hash: string
  hash: string
}

/** The columns of an EntryRow. */
export const ENTRY_COLUMNS = `seq::text, ${TIME_TEXT('time')} AS time, actor, action, subject_kind, subject_id, jurisdiction_id, detail, prev_hash, hash`

const toEntry = (r: EntryRow): AuditEntry => ({
  seq: Number(r.seq),
  time: r.time,
  actor: r.actor,
  action: r.action,
  subjectKind: r.subject_kind,
  subjectId: r.subject_id,
  jurisdictionId: r.jurisdiction_id,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
  prevHash: r.prev_hash,
  hash: r.hash
})

/** Entries matching the query, newest first. `scope`: the caller's jurisdiction (null: everything). */
export async function listAudit(db: Queryable, q: Partial<AuditQuery>, scope: string | null): Promise<{ items: AuditEntry[]; total: number }> {
  const where: string[] = []
  const args: unknown[] = []
  const add = (sql: string, v: unknown) => {
    args.push(v)
    where.push(sql.replace('?', `$${args.length}`))
  }
  if (q.subjectKind) add('subject_kind = ?', q.subjectKind)
  if (q.subjectId) add('subject_id = ?', q.subjectId)
  if (q.actor) add('actor = ?', q.actor)
  if (q.action) add('action = ?', q.action)
  if (q.from) add('time >= ?', q.from)
  if (q.to) add('time < ?', q.to)
  if (scope !== null) add('jurisdiction_id IN (SELECT id FROM jurisdictions WHERE ? = ANY (ancestors))', scope)
  const filter = where.length ? `WHERE ${where.join(' AND ')}` : ''
  const { rows } = await db.query<EntryRow & { total: string }>(
    `SELECT ${ENTRY_COLUMNS}, count(*) OVER () AS total
     FROM audit_log ${filter} ORDER BY audit_log.seq DESC LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
    [...args, q.limit ?? 100, q.offset ?? 0]
  )
  // An offset past the end returns no row to carry the total: count separately then.
  let total = rows[0] ? Number(rows[0].total) : 0
  if (!rows[0] && (q.offset ?? 0) > 0) {
    const { rows: n } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log ${filter}`, args)
    total = n[0]!.n
  }
  return { items: rows.map(toEntry), total }
}
