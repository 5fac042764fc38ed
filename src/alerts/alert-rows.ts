/**
 * Alert rows of PostgreSQL (snake_case, Date objects, or ISO strings from rows built with to_jsonb) as the API's Alert
 * and AlertTransition objects (schemas/alerts.ts).
 */
import type { Alert, AlertTransition } from '../../schemas/alerts.js'

type Row = Record<string, unknown>

// Rows come with Date objects; rows built by SQL functions (to_jsonb) with ISO strings.
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : typeof v === 'string' ? new Date(v).toISOString() : null)

export const toAlert = (r: Row): Alert => ({
  id: String(r.id),
  unitId: r.unit_id as string,
  deviceId: r.device_id as string,
  point: r.point as string,
  ruleId: r.rule_id as string,
  class: r.class as Alert['class'],
  troubleType: (r.trouble_type as Alert['troubleType']) ?? null,
  severity: r.severity as Alert['severity'],
  title: r.title as string,
  detail: (r.detail as Record<string, unknown>) ?? {},
  status: r.status as Alert['status'],
  active: r.active as boolean,
  count: r.count as number,
  firstSeen: iso(r.first_seen)!,
  lastSeen: iso(r.last_seen)!,
  clearedAt: iso(r.cleared_at),
  verification: (r.verification as Alert['verification']) ?? null,
  escalationLevel: r.escalation_level as number,
  escalatedAt: iso(r.escalated_at),
  acknowledgedAt: iso(r.acknowledged_at),
  acknowledgedBy: (r.acknowledged_by as string | null) ?? null,
  confirmedAt: iso(r.confirmed_at),
  confirmedBy: (r.confirmed_by as string | null) ?? null,
  resolvedAt: iso(r.resolved_at),
  resolvedBy: (r.resolved_by as string | null) ?? null,
  disposition: (r.disposition as Alert['disposition']) ?? null,
  resolutionComment: (r.resolution_comment as string | null) ?? null,
  isolationOwner: (r.isolation_owner as string | null) ?? null,
  isolationExpiresAt: iso(r.isolation_expires_at)
})

export const toTransition = (r: Row): AlertTransition => ({
  id: String(r.id),
  at: iso(r.at)!,
  action: r.action as string,
  actor: r.actor as string,
  comment: (r.comment as string | null) ?? null,
  fromStatus: (r.from_status as string | null) ?? null,
  toStatus: r.to_status as string,
  data: (r.data as Record<string, unknown>) ?? {}
})
