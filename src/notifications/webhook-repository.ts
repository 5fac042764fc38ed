/**
 * Webhook subscriptions and dead letters in PostgreSQL. A scope (the caller's jurisdiction) limits every read to
 * webhooks bound inside that subtree; one bound to no jurisdiction is visible to administrators of the whole system.
 */
import type { Pool } from '../store/postgres.js'
import type { Queryable } from '../audit/audit-log.js'
import type { DeadLetter, Webhook, WebhookCreate, WebhookPatch } from '../../schemas/webhooks.js'

type Row = Record<string, unknown>
const iso = (v: unknown) => (v as Date).toISOString()
const isId = (id: string) => /^[0-9]{1,18}$/.test(id)

/** What a delivery needs: where, and the key. Never returned by the API. */
export interface WebhookTarget {
  id: string
  url: string
  secret: string
  enabled: boolean
}

const toWebhook = (r: Row): Webhook => ({
  id: String(r.id),
  name: r.name as string,
  url: r.url as string,
  jurisdictionId: (r.jurisdiction_id as string | null) ?? null,
  classes: r.classes as string[],
  enabled: r.enabled as boolean,
  createdAt: iso(r.created_at),
  createdBy: r.created_by as string,
  updatedAt: iso(r.updated_at)
})

const toDeadLetter = (r: Row): DeadLetter => ({
  id: String(r.id),
  webhookId: String(r.webhook_id),
  deliveryId: r.delivery_id as string,
  body: r.body as string,
  attempts: r.attempts as number,
  lastStatus: (r.last_status as number | null) ?? null,
  lastError: r.last_error as string,
  createdAt: iso(r.created_at)
})

// A webhook inside the scope: bound to a jurisdiction of the subtree (`$n` is the scope).
const IN_SCOPE = (n: number) => `w.jurisdiction_id IN (SELECT id FROM jurisdictions WHERE $${n} = ANY (ancestors))`

export class WebhookRepository {
  constructor(private readonly pool: Pool) {}

  /** `db`: the transaction of the action's audit entry (as every write below). */
  async create(body: WebhookCreate, secret: string, by: string, db: Queryable = this.pool): Promise<Webhook> {
    const { rows } = await db.query(
      `INSERT INTO webhooks (name, url, jurisdiction_id, classes, secret, enabled, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [body.name, body.url, body.jurisdictionId, body.classes, secret, body.enabled ?? true, by]
    )
    return toWebhook(rows[0] as Row)
  }

  async get(id: string): Promise<Webhook | null> {
    if (!isId(id)) return null
    const { rows } = await this.pool.query('SELECT * FROM webhooks WHERE id = $1', [id])
    return rows[0] ? toWebhook(rows[0] as Row) : null
  }

  async target(id: string): Promise<WebhookTarget | null> {
    if (!isId(id)) return null
    const { rows } = await this.pool.query<{ id: string; url: string; secret: string; enabled: boolean }>('SELECT id, url, secret, enabled FROM webhooks WHERE id = $1', [id])
    return rows[0] ? { ...rows[0], id: String(rows[0].id) } : null
  }

  async list(scope: string | null, page: { limit: number; offset: number }): Promise<{ items: Webhook[]; total: number }> {
    const where = scope === null ? '' : `WHERE ${IN_SCOPE(3)}`
    const args = scope === null ? [page.limit, page.offset] : [page.limit, page.offset, scope]
    const { rows } = await this.pool.query(`SELECT w.*, count(*) OVER () AS total FROM webhooks w ${where} ORDER BY w.id LIMIT $1 OFFSET $2`, args)
    return { items: rows.map((r) => toWebhook(r as Row)), total: rows[0] ? Number((rows[0] as Row).total) : 0 }
  }

  async update(id: string, patch: WebhookPatch, db: Queryable = this.pool): Promise<Webhook | null> {
    const { rows } = await db.query(
      `UPDATE webhooks SET name = coalesce($2, name), url = coalesce($3, url),
              jurisdiction_id = CASE WHEN $4 THEN $5 ELSE jurisdiction_id END,
              classes = coalesce($6, classes), enabled = coalesce($7, enabled), updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, patch.name ?? null, patch.url ?? null, patch.jurisdictionId !== undefined, patch.jurisdictionId ?? null, patch.classes ?? null, patch.enabled ?? null]
    )
    return rows[0] ? toWebhook(rows[0] as Row) : null
  }

  async delete(id: string, db: Queryable = this.pool): Promise<Webhook | null> {
    if (!isId(id)) return null
    const { rows } = await db.query('DELETE FROM webhooks WHERE id = $1 RETURNING *', [id])
    return rows[0] ? toWebhook(rows[0] as Row) : null
  }

  /**
   * Enabled webhooks that want a unit's notification: bound to one of the unit's jurisdictions (or to none), asking for
   * one of `classes`, and existing when the digest was sent (a new webhook does not get the backlog).
   */
  async matching(unitId: string, classes: string[], sentAt: string): Promise<{ id: string; classes: string[] }[]> {
    const { rows } = await this.pool.query<{ id: string; classes: string[] }>(
      `SELECT w.id, w.classes FROM webhooks w
       WHERE w.enabled AND w.classes && $2::text[] AND w.created_at <= $3
         AND (w.jurisdiction_id IS NULL OR w.jurisdiction_id = ANY (
           SELECT unnest(j.ancestors) FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.id = $1))`,
      [unitId, classes, sentAt]
    )
    return rows.map((r) => ({ id: String(r.id), classes: r.classes }))
  }

  /** Record a delivery that exhausted its attempts (again, if a retried dead letter failed once more). */
  async deadLetter(d: { webhookId: string; deliveryId: string; body: string; attempts: number; lastStatus: number | null; lastError: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO webhook_dead_letters (webhook_id, delivery_id, body, attempts, last_status, last_error) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (delivery_id) DO UPDATE SET attempts = webhook_dead_letters.attempts + EXCLUDED.attempts,
         last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error, created_at = now()`,
      [d.webhookId, d.deliveryId, d.body, d.attempts, d.lastStatus, d.lastError]
    )
  }

  async deadLetters(scope: string | null, q: { webhookId?: string; limit: number; offset: number }): Promise<{ items: DeadLetter[]; total: number }> {
    const args: unknown[] = [q.limit, q.offset]
    const where: string[] = []
    if (q.webhookId) where.push(`d.webhook_id = $${args.push(q.webhookId)}`)
    if (scope !== null) where.push(IN_SCOPE(args.push(scope)))
    const { rows } = await this.pool.query(
      `SELECT d.*, count(*) OVER () AS total FROM webhook_dead_letters d JOIN webhooks w ON w.id = d.webhook_id
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY d.id DESC LIMIT $1 OFFSET $2`,
      args
    )
    return { items: rows.map((r) => toDeadLetter(r as Row)), total: rows[0] ? Number((rows[0] as Row).total) : 0 }
  }

  async getDeadLetter(id: string): Promise<DeadLetter | null> {
    if (!isId(id)) return null
    const { rows } = await this.pool.query('SELECT * FROM webhook_dead_letters WHERE id = $1', [id])
    return rows[0] ? toDeadLetter(rows[0] as Row) : null
  }

  /** Whether it was there to delete (of two calls at once, one gets true). */
  async deleteDeadLetter(id: string, db: Queryable = this.pool): Promise<boolean> {
    const { rows } = await db.query('DELETE FROM webhook_dead_letters WHERE id = $1 RETURNING id', [id])
    return rows.length > 0
  }

  async jurisdictionExists(id: string): Promise<boolean> {
    const { rows } = await this.pool.query('SELECT 1 FROM jurisdictions WHERE id = $1', [id])
    return rows.length > 0
  }

  /** The jurisdiction a webhook or a dead letter's webhook is bound to; undefined when there is no such record. */
  async jurisdictionOf(kind: 'webhook' | 'deadLetter', id: string): Promise<string | null | undefined> {
    if (!isId(id)) return undefined
    const sql =
      kind === 'webhook'
        ? 'SELECT jurisdiction_id FROM webhooks WHERE id = $1'
        : 'SELECT w.jurisdiction_id FROM webhook_dead_letters d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1'
    const { rows } = await this.pool.query<{ jurisdiction_id: string | null }>(sql, [id])
    return rows[0] ? rows[0].jurisdiction_id : undefined
  }
}
