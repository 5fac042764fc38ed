/**
 * Alerts in PostgreSQL, the system of record: one open alert per (unit, device, point, rule), a lifecycle
 * `open → acknowledged → resolved`, and every transition recorded with actor, time and comment.
 * Each change runs in one transaction that locks the alert row, so the engine and operators never race.
 */
import type { PoolClient } from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import { FirewatchError } from '../errors.js'
import type { AuditLog } from '../audit/audit-log.js'
import { auditAlertStep } from '../audit/alert-audit.js'
import { toAlert, toTransition } from './alert-rows.js'
import type {
  Alert,
  AlertClass,
  AlertsQuery,
  AlertTransition,
  OperatorDisposition,
  Severity,
  TroubleType,
  Verification
} from '../../schemas/alerts.js'

/** Who acted: 'system' for the engine. */
export const SYSTEM = 'system'

export interface AlertKey {
  unitId: string
  /** '' for unit-level alerts. */
  deviceId: string
  /** '' when the rule is not about one panel point. */
  point: string
  ruleId: string
}

export interface RaiseInput extends AlertKey {
  class: AlertClass
  troubleType: TroubleType | null
  severity: Severity
  title: string
  detail: Record<string, unknown>
  at: Date
  verification?: Verification | null
  isolationExpiresAt?: Date | null
}

/** What a call did to the alert: the engine publishes a change only when something changed. */
export type AlertChange =
  | 'opened'
  | 'recurred'
  | 'restored'
  | 'cleared'
  | 'escalated'
  | 'reminded'
  | 'upgraded'
  | 'acknowledged'
  | 'confirmed'
  | 'resolved'
  | 'isolation_set'
  /** Live channel only (no state change): the 119 forward gave up, an operator must phone 119. */
  | 'forward_119_gave_up'

export interface AlertResult {
  alert: Alert
  change: AlertChange | null
  /** The transition that recorded the change: marked dispatched once every listener heard of it. */
  transitionId?: string
}

/** Classes that clear themselves when their condition restores. A fire alert waits for a person. */
const SELF_CLEARING: ReadonlySet<AlertClass> = new Set(['supervisory', 'trouble', 'isolation', 'test'])

type Row = Record<string, unknown>

const isId = (id: string) => /^[0-9]{1,18}$/.test(id)
const notFound = (id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `alert ${id} does not exist`, { statusCode: 404 })
const conflict = (message: string) => new FirewatchError('FW_ERR_CONFLICT', message, { statusCode: 409 })

export class AlertRepository {
  /** `audit`: where a person's steps are also recorded, in the same transaction (the engine's thread has none). */
  constructor(
    private readonly pool: Pool,
    private readonly audit: AuditLog | null = null
  ) {}

  /**
   * The rule's condition holds: open an alert, or count a recurrence on the open one. A raise for an alert whose
   * condition is already active (a replayed log entry) changes nothing.
   */
  async raise(input: RaiseInput): Promise<AlertResult> {
    try {
      return await this.raiseOnce(input)
    } catch (err) {
      // Two raises of a new key at once: the loser's insert hit the one-open index; now the row exists, so try again.
      if ((err as { code?: string }).code === '23505') return this.raiseOnce(input)
      throw err
    }
  }

  /** One round trip: the SQL function alert_raise (migration 006) locks, inserts or counts, and records. */
  private async raiseOnce(input: RaiseInput): Promise<AlertResult> {
    const { rows } = await this.pool.query<{ r: { change: AlertChange | null; transitionId: number | null; alert: Row } }>(
      'SELECT alert_raise($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS r',
      [
        input.unitId,
        input.deviceId,
        input.point,
        input.ruleId,
        input.class,
        input.troubleType,
        input.severity,
        input.title,
        JSON.stringify(input.detail),
        input.at,
        input.verification ?? null,
        input.isolationExpiresAt ?? null
      ]
    )
    const r = rows[0]!.r
    return { alert: toAlert(r.alert), change: r.change, ...(r.transitionId !== null ? { transitionId: String(r.transitionId) } : {}) }
  }

  /**
   * The condition restored. Troubles, supervisories, isolations and test alerts resolve themselves (recorded as
   * such); a fire alert only records the restore and stays open until a person disposes of it.
   */
  async clear(key: AlertKey, at: Date, detail: Record<string, unknown> = {}): Promise<AlertResult | null> {
    return this.tx(async (c) => {
      const existing = await this.lockOpen(c, key)
      if (!existing || !existing.active) return null
      if (SELF_CLEARING.has(existing.class as AlertClass)) {
        const { rows } = await c.query(
          `UPDATE alerts SET active = false, cleared_at = greatest($2, last_seen), status = 'resolved', resolved_at = greatest($2, last_seen), resolved_by = $3,
                  disposition = 'restored', resolution_comment = 'condition restored'
           WHERE id = $1 RETURNING *`,
          [existing.id, at, SYSTEM]
        )
        const transitionId = await this.record(c, existing.id as string, 'cleared', SYSTEM, 'condition restored', existing.status as string, 'resolved', detail)
        return { alert: toAlert(rows[0] as Row), change: 'cleared', transitionId }
      }
      // A restore evaluated after a timer raised the alert can carry an earlier device time: never clear before it opened.
      const { rows } = await c.query('UPDATE alerts SET active = false, cleared_at = greatest($2, last_seen) WHERE id = $1 RETURNING *', [existing.id, at])
      const transitionId = await this.record(c, existing.id as string, 'restored', SYSTEM, 'condition restored; awaiting disposition', existing.status as string, existing.status as string, detail)
      return { alert: toAlert(rows[0] as Row), change: 'restored', transitionId }
    })
  }

  async acknowledge(id: string, actor: string, comment: string | null): Promise<AlertResult> {
    return this.tx(async (c) => {
      const a = await this.lockById(c, id)
      if (a.status === 'resolved') throw conflict(`alert ${id} is resolved`)
      if (a.status === 'acknowledged') return { alert: toAlert(a), change: null }
      const { rows } = await c.query(
        `UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 WHERE id = $1 RETURNING *`,
        [id, actor]
      )
      const transitionId = await this.record(c, id, 'acknowledged', actor, comment, 'open', 'acknowledged')
      return { alert: toAlert(rows[0] as Row), change: 'acknowledged', transitionId }
    })
  }

  /** An operator confirms a fire alert as real (the step that forwards it to the 119 command center). */
  async confirm(id: string, actor: string, comment: string | null): Promise<AlertResult> {
    return this.tx(async (c) => {
      const a = await this.lockById(c, id)
      if (a.class !== 'fire') throw conflict(`alert ${id} is a ${a.class as string} alert; only fire alerts are confirmed`)
      if (a.status === 'resolved') throw conflict(`alert ${id} is resolved`)
      if (a.confirmed_at) return { alert: toAlert(a), change: null }
      const { rows } = await c.query(
        `UPDATE alerts SET confirmed_at = now(), confirmed_by = $2, verification = 'operator',
                status = 'acknowledged', acknowledged_at = coalesce(acknowledged_at, now()),
                acknowledged_by = coalesce(acknowledged_by, $2)
         WHERE id = $1 RETURNING *`,
        [id, actor]
      )
      if (a.status === 'open') await this.record(c, id, 'acknowledged', actor, null, 'open', 'acknowledged', {}, false)
      const transitionId = await this.record(c, id, 'confirmed', actor, comment, 'acknowledged', 'acknowledged')
      return { alert: toAlert(rows[0] as Row), change: 'confirmed', transitionId }
    })
  }

  /** A person closes the alert with a disposition. An open alert is acknowledged on the way (both recorded). */
  async resolve(id: string, actor: string, disposition: OperatorDisposition, comment: string | null): Promise<AlertResult> {
    return this.tx(async (c) => {
      const a = await this.lockById(c, id)
      if (a.status === 'resolved') throw conflict(`alert ${id} is already resolved`)
      if (a.status === 'open') await this.record(c, id, 'acknowledged', actor, null, 'open', 'acknowledged', {}, false)
      const { rows } = await c.query(
        `UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = $2, disposition = $3,
                resolution_comment = $4, acknowledged_at = coalesce(acknowledged_at, now()),
                acknowledged_by = coalesce(acknowledged_by, $2)
         WHERE id = $1 RETURNING *`,
        [id, actor, disposition, comment]
      )
      const transitionId = await this.record(c, id, 'resolved', actor, comment, 'acknowledged', 'resolved', { disposition })
      return { alert: toAlert(rows[0] as Row), change: 'resolved', transitionId }
    })
  }

  /** Escalation of an alert nobody acknowledged: level 1 escalates, later levels are reminders. Null if handled. */
  async escalate(id: string, level: number): Promise<AlertResult | null> {
    if (!isId(id)) return null
    return this.tx(async (c) => {
      const { rows: found } = await c.query('SELECT * FROM alerts WHERE id = $1 FOR UPDATE', [id])
      const a = found[0] as Row | undefined
      if (!a || a.status !== 'open' || (a.escalation_level as number) >= level) return null
      const { rows } = await c.query('UPDATE alerts SET escalation_level = $2, escalated_at = now() WHERE id = $1 RETURNING *', [id, level])
      const action = level === 1 ? 'escalated' : 'reminded'
      const transitionId = await this.record(c, id, action, SYSTEM, `not acknowledged; escalation level ${level}`, 'open', 'open', { level })
      return { alert: toAlert(rows[0] as Row), change: action, transitionId }
    })
  }

  /** A second source in the unit confirms a single-source fire alert. */
  async upgrade(id: string, title: string, detail: Record<string, unknown>): Promise<AlertResult | null> {
    if (!isId(id)) return null
    return this.tx(async (c) => {
      const { rows: found } = await c.query('SELECT * FROM alerts WHERE id = $1 FOR UPDATE', [id])
      const a = found[0] as Row | undefined
      if (!a || a.status === 'resolved' || a.verification !== 'single_source') return null
      const { rows } = await c.query(
        `UPDATE alerts SET verification = 'two_sources', severity = 'critical', title = $2, detail = detail || $3::jsonb
         WHERE id = $1 RETURNING *`,
        [id, title, JSON.stringify(detail)]
      )
      const transitionId = await this.record(c, id, 'upgraded', SYSTEM, title, a.status as string, a.status as string, detail)
      return { alert: toAlert(rows[0] as Row), change: 'upgraded', transitionId }
    })
  }

  /** Owner and expiry of an isolation (屏蔽). */
  async setIsolation(id: string, actor: string, owner: string, expiresAt: Date, comment: string | null): Promise<AlertResult> {
    return this.tx(async (c) => {
      const a = await this.lockById(c, id)
      if (a.class !== 'isolation') throw conflict(`alert ${id} is a ${a.class as string} alert, not an isolation`)
      if (a.status === 'resolved') throw conflict(`alert ${id} is resolved`)
      const { rows } = await c.query(
        'UPDATE alerts SET isolation_owner = $2, isolation_expires_at = $3 WHERE id = $1 RETURNING *',
        [id, owner, expiresAt]
      )
      const transitionId = await this.record(c, id, 'isolation_set', actor, comment, a.status as string, a.status as string, { owner, expiresAt: expiresAt.toISOString() })
      return { alert: toAlert(rows[0] as Row), change: 'isolation_set', transitionId }
    })
  }

  async get(id: string): Promise<Alert | null> {
    if (!isId(id)) return null
    const { rows } = await this.pool.query('SELECT * FROM alerts WHERE id = $1', [id])
    return rows[0] ? toAlert(rows[0] as Row) : null
  }

  async getOpen(key: AlertKey): Promise<Alert | null> {
    const { rows } = await this.pool.query(
      `SELECT * FROM alerts WHERE unit_id = $1 AND device_id = $2 AND point = $3 AND rule_id = $4 AND status <> 'resolved'`,
      [key.unitId, key.deviceId, key.point, key.ruleId]
    )
    return rows[0] ? toAlert(rows[0] as Row) : null
  }

  async transitions(id: string): Promise<AlertTransition[]> {
    if (!isId(id)) return []
    const { rows } = await this.pool.query('SELECT * FROM alert_transitions WHERE alert_id = $1 ORDER BY id', [id])
    return rows.map((r) => toTransition(r as Row))
  }

  /** `scope`: only alerts of units in that jurisdiction subtree (a caller's scope); null: every alert. */
  async list(q: Partial<AlertsQuery>, scope: string | null = null): Promise<{ items: Alert[]; total: number }> {
    const where: string[] = []
    const args: unknown[] = []
    const add = (sql: string, v: unknown) => {
      args.push(v)
      where.push(sql.replace('?', `$${args.length}`))
    }
    if (q.status === 'unresolved') where.push(`status <> 'resolved'`)
    else if (q.status) add('status = ?', q.status)
    if (q.unitId) add('unit_id = ?', q.unitId)
    if (q.deviceId) add('device_id = ?', q.deviceId)
    if (q.class) add('class = ?', q.class)
    if (q.severity) add('severity = ?', q.severity)
    if (q.ruleId) add('rule_id = ?', q.ruleId)
    if (q.from) add('last_seen >= ?', q.from)
    if (q.to) add('first_seen < ?', q.to)
    if (scope !== null) add('unit_id IN (SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE ? = ANY (j.ancestors))', scope)
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : ''
    const { rows: count } = await this.pool.query(`SELECT count(*)::int AS n FROM alerts ${filter}`, args)
    const { rows } = await this.pool.query(
      `SELECT * FROM alerts ${filter}
       ORDER BY (status = 'resolved'), CASE class WHEN 'fire' THEN 0 WHEN 'supervisory' THEN 1 WHEN 'trouble' THEN 2 ELSE 3 END,
                last_seen DESC, id DESC
       LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
      [...args, q.limit ?? 100, q.offset ?? 0]
    )
    return { items: rows.map((r) => toAlert(r as Row)), total: (count[0] as { n: number }).n }
  }

  /** Fire alerts of a unit disposed of as false alarms since a time (test alerts are never counted). */
  async countFalseAlarms(unitId: string, since: Date): Promise<number> {
    const { rows } = await this.pool.query(
      `SELECT count(*)::int AS n FROM alerts
       WHERE unit_id = $1 AND status = 'resolved' AND disposition = 'false_alarm' AND class = 'fire' AND resolved_at >= $2`,
      [unitId, since]
    )
    return (rows[0] as { n: number }).n
  }

  /** Units with at least one false alarm since a time: the candidates of the false-alarm-rate sweep. */
  async unitsWithFalseAlarms(since: Date): Promise<{ unitId: string; count: number }[]> {
    const { rows } = await this.pool.query(
      `SELECT unit_id, count(*)::int AS n FROM alerts
       WHERE status = 'resolved' AND disposition = 'false_alarm' AND class = 'fire' AND resolved_at >= $1
       GROUP BY unit_id`,
      [since]
    )
    return rows.map((r) => ({ unitId: (r as Row).unit_id as string, count: (r as Row).n as number }))
  }

  /** Unresolved alerts by class (for /metrics). */
  async openByClass(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query(`SELECT class, count(*)::int AS n FROM alerts WHERE status <> 'resolved' GROUP BY class`)
    return Object.fromEntries(rows.map((r) => [(r as Row).class as string, (r as Row).n as number]))
  }

  /** Open alerts of a rule (the sweeps re-check them). */
  async openByRule(ruleId: string): Promise<Alert[]> {
    const { rows } = await this.pool.query(`SELECT * FROM alerts WHERE rule_id = $1 AND status <> 'resolved'`, [ruleId])
    return rows.map((r) => toAlert(r as Row))
  }

  /** Isolations still in force whose expiry has passed (the sweep's safety net under the expiry timers). */
  async expiredIsolations(now: Date): Promise<Alert[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM alerts WHERE class = 'isolation' AND status <> 'resolved' AND isolation_expires_at <= $1`,
      [now]
    )
    return rows.map((r) => toAlert(r as Row))
  }

  private async lockOpen(c: PoolClient, key: AlertKey): Promise<Row | null> {
    const { rows } = await c.query(
      `SELECT * FROM alerts WHERE unit_id = $1 AND device_id = $2 AND point = $3 AND rule_id = $4 AND status <> 'resolved'
       FOR UPDATE`,
      [key.unitId, key.deviceId, key.point, key.ruleId]
    )
    return (rows[0] as Row | undefined) ?? null
  }

  private async lockById(c: PoolClient, id: string): Promise<Row> {
    if (!isId(id)) throw notFound(id)
    const { rows } = await c.query('SELECT * FROM alerts WHERE id = $1 FOR UPDATE', [id])
    if (!rows[0]) throw notFound(id)
    return rows[0] as Row
  }

  private async record(
    c: PoolClient,
    alertId: string,
    action: string,
    actor: string,
    comment: string | null,
    from: string | null,
    to: string,
    data: Record<string, unknown> = {},
    /** False for a step recorded on the way to another (the acknowledgement a resolve implies): nothing to dispatch. */
    dispatch = true
  ): Promise<string> {
    const { rows } = await c.query(
      `INSERT INTO alert_transitions (alert_id, action, actor, comment, from_status, to_status, data, dispatched_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN NULL ELSE now() END) RETURNING id`,
      [alertId, action, actor, comment, from, to, JSON.stringify(data), dispatch]
    )
    const transitionId = String((rows[0] as Row).id)
    // After the alert row's lock (every caller takes it first), so the audit lock is never held while waiting for it.
    if (this.audit && actor !== SYSTEM) await auditAlertStep(this.audit, c, { alertId, action, actor, comment, from, to, data, transitionId })
    return transitionId
  }

  /** The change a transition recorded was dispatched to every listener. */
  async markDispatched(transitionId: string): Promise<void> {
    await this.pool.query('UPDATE alert_transitions SET dispatched_at = now() WHERE id = $1 AND dispatched_at IS NULL', [transitionId])
  }

  /** Changes committed but not dispatched (a crash or an error after the commit), oldest first. */
  async undispatched(olderThanMs: number, limit = 100): Promise<{ transitionId: string; change: AlertChange; alert: Alert }[]> {
    const { rows } = await this.pool.query(
      `SELECT t.id AS transition_id, t.action, a.* FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
       WHERE t.dispatched_at IS NULL AND t.at < now() - make_interval(secs => $1::double precision / 1000)
       ORDER BY t.id LIMIT $2`,
      [olderThanMs, limit]
    )
    return rows.map((r) => ({ transitionId: String((r as Row).transition_id), change: (r as Row).action as AlertChange, alert: toAlert(r as Row) }))
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    try {
      return await withTransaction(this.pool, fn)
    } catch (err) {
      // Two raises of a new alert at once: the loser's insert hits the one-open index; the winner's row stands.
      if ((err as { code?: string }).code === '23505' && String((err as Error).message).includes('alerts_one_open')) {
        throw conflict('an open alert with this key was opened concurrently')
      }
      throw err
    }
  }
}
