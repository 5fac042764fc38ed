/**
 * The follow-up's one place of contact with the audit trail (src/audit/): every case step and credit entry is recorded
 * through AuditLog.record, with the step's transaction client so both commit together.
 */
import type { AuditLog } from '../audit/audit-log.js'

export type AuditRecorder = Pick<AuditLog, 'record'>
