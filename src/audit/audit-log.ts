/**
 * The audit trail: an append-only, hash-chained log of what people (and the server, as 'system') did.
 *
 * Appending takes a transaction-scoped advisory lock, reads the head (last seq and hash), and inserts seq + 1 with
 * hash = SHA-256(previous hash ‖ canonical text of this entry) (see canonical.ts). The lock is held until the
 * caller's transaction ends, so concurrent appenders queue up and the chain never forks; an entry whose transaction
 * rolls back leaves no gap because no sequence is consumed.
 *
 * Record inside the action's own transaction (pass its client), as its LAST statement: the action and its entry then
 * commit together, and the lock is held only for the commit (row locks taken after it could deadlock).
 * The transaction must be READ COMMITTED (the default): the head is read after the lock, by a fresh snapshot.
 */
import type { PoolClient } from 'pg'
import { withTransaction, type Pool } from '../store/postgres.js'
import { canonicalJson, chainHash, GENESIS_HASH, TIME_TEXT } from './canonical.js'
import { verifyChain, type VerifyOptions, type VerifyResult } from './verify.js'
import { listAudit } from './audit-query.js'
import type { AuditEntry, AuditQuery } from '../../schemas/audit.js'

/** The key of the advisory lock that serialises appends (an arbitrary constant, distinct from the migrations'). */
export const AUDIT_LOCK = 0x61756474

export interface AuditInput {
  /** The principal's name (`req.principal.name`), or 'system' for the server's own steps. */
  actor: string
  /** A dotted verb: `alert.acknowledged`, `unit.created`, `case.opened` … */
  action: string
  subjectKind: string
  subjectId: string
  /** The subject's jurisdiction (scoped reads see entries of their subtree); null: system-wide. */
  jurisdictionId: string | null
  /** A small JSON object (what changed, a comment). */
  detail?: Record<string, unknown>
}

/** A stored entry, as the API returns it (schemas/audit.ts). */
export type { AuditEntry }

/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<Pool, 'query'>

export class AuditLog {
  constructor(private readonly pool: Pool) {}

  /**
   * Append one entry. With `client`, inside that transaction (committed or rolled back with it); without, in a
   * transaction of its own.
   */
  async record(input: AuditInput, client?: PoolClient): Promise<AuditEntry> {
    if (client) return this.append(client, input)
    return this.transaction((c) => this.append(c, input))
  }

  /** Run `fn` in one transaction: an action and the entries it records commit together or not at all. */
  transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn)
  }

  /** Check the whole chain (see verify.ts); the head it reports can be published to anchor the trail elsewhere. */
  verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    return verifyChain(this.pool, options)
  }

  /** Entries matching the query, newest first; `scope` as a principal's (null: every entry). */
  list(q: Partial<AuditQuery>, scope: string | null = null): Promise<{ items: AuditEntry[]; total: number }> {
    return listAudit(this.pool, q, scope)
  }

  private async append(c: PoolClient, input: AuditInput): Promise<AuditEntry> {
    const detail = canonicalJson(input.detail ?? {})
    if (!detail.startsWith('{')) throw new TypeError('audit detail must be a JSON object')
    await c.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK])
    // After the lock, so this statement's snapshot sees the entry the previous holder committed. The time never runs
    // backwards along the chain, even if the database clock is stepped back.
    const { rows } = await c.query<{ seq: string | null; hash: string | null; time: string; isolation: string }>(
      `SELECT h.seq, h.hash, ${TIME_TEXT('greatest(clock_timestamp(), h.time)')} AS time, current_setting('transaction_isolation') AS isolation
       FROM (SELECT 1) one LEFT JOIN (SELECT seq, hash, time FROM audit_log ORDER BY seq DESC LIMIT 1) h ON true`
    )
    const head = rows[0]!
    // A snapshot taken before the lock (REPEATABLE READ, SERIALIZABLE) would miss an entry committed meanwhile and
    // reuse its seq: refuse plainly rather than fail on the key or, with the key gone, fork the chain.
    if (head.isolation !== 'read committed') throw new Error(`audit entries are appended in READ COMMITTED transactions only, not ${head.isolation}`)
    const fields = {
      seq: head.seq === null ? 1 : Number(head.seq) + 1,
      time: head.time,
      actor: input.actor,
      action: input.action,
      subjectKind: input.subjectKind,
      subjectId: input.subjectId,
      jurisdictionId: input.jurisdictionId,
      detail
    }
    const prevHash = head.hash ?? GENESIS_HASH
    const hash = chainHash(prevHash, fields)
    await c.query(
      `INSERT INTO audit_log (seq, time, actor, action, subject_kind, subject_id, jurisdiction_id, detail, prev_hash, hash)
       VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [fields.seq, fields.time, fields.actor, fields.action, fields.subjectKind, fields.subjectId, fields.jurisdictionId, detail, prevHash, hash]
    )
    return { ...fields, detail: JSON.parse(detail) as Record<string, unknown>, prevHash, hash }
  }
}
