/**
 * The follow-up's one place of contact with the audit trail (src/audit/, AuditLog.record): every case step and
 * credit entry is recorded through this interface, with the step's transaction client so both commit together.
 */
import type pg from 'pg'

export interface AuditEntry {
  /** The principal's name, or 'system'. */
  actor: string
  /** A dotted verb: case.opened, case.assigned, credit.entry_added … */
  action: string
  subjectKind: string
  subjectId: string
  /** The subject's jurisdiction; null for a system-wide entry (the credit threshold). */
  jurisdictionId: string | null
  detail?: Record<string, unknown>
}

export interface AuditRecorder {
  record(entry: AuditEntry, client?: pg.PoolClient): Promise<unknown>
}
