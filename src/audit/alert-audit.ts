/**
 * A person's step on an alert (acknowledge, confirm, resolve, isolation owner) as an audit entry, written in the
 * alert's own transaction by the alert repository. The rule engine's automatic steps (actor 'system') stay in
 * alert_transitions only: they follow from device data, which is kept in the ingest log and InfluxDB.
 */
import type { PoolClient } from 'pg'
import type { AuditLog } from './audit-log.js'

export interface AlertStep {
  alertId: string
  /** The transition's action: acknowledged, confirmed, resolved, isolation_set. */
  action: string
  actor: string
  comment: string | null
  from: string | null
  to: string
  data: Record<string, unknown>
  transitionId: string
}

export async function auditAlertStep(audit: AuditLog, c: PoolClient, step: AlertStep): Promise<void> {
  const { rows } = await c.query<{ unit_id: string; device_id: string; class: string; jurisdiction_id: string }>(
    'SELECT a.unit_id, a.device_id, a.class, u.jurisdiction_id FROM alerts a JOIN units u ON u.id = a.unit_id WHERE a.id = $1',
    [step.alertId]
  )
  const alert = rows[0]
  await audit.record(
    {
      actor: step.actor,
      action: `alert.${step.action}`,
      subjectKind: 'alert',
      subjectId: step.alertId,
      jurisdictionId: alert?.jurisdiction_id ?? null,
      detail: {
        unitId: alert?.unit_id ?? null,
        deviceId: alert?.device_id || null,
        class: alert?.class ?? null,
        from: step.from,
        to: step.to,
        comment: step.comment,
        transitionId: step.transitionId,
        ...(Object.keys(step.data).length > 0 ? { data: step.data } : {})
      }
    },
    c
  )
}
