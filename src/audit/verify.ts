/**
 * Walk the audit chain from the first entry to the head and report the first entry that does not hold:
 * - `gap`: an entry is missing (seq jumps), e.g. one was deleted;
 * - `sequence`: an entry whose seq is out of order (constraints dropped, a row forged in);
 * - `broken_link`: an entry's prev_hash is not the previous entry's hash;
 * - `hash_mismatch`: the entry's stored hash is not the hash of its stored fields (a field or the hash was changed);
 * - `anchor_mismatch`: the chain is consistent but disagrees with a head published earlier (`anchor`): it was
 *   rewritten or cut back by someone who recomputed the hashes.
 * The chain alone cannot tell a consistently rewritten trail from the real one; publishing the head and checking it
 * later (the anchor) can. docs/AUDIT.md has the threat model.
 */
import type { Pool } from '../store/postgres.js'
import { chainHash, GENESIS_HASH, TIME_TEXT } from './canonical.js'
import { ENTRY_COLUMNS, type EntryRow } from './audit-query.js'

export type BreakReason = 'gap' | 'sequence' | 'broken_link' | 'hash_mismatch' | 'anchor_mismatch'

export interface VerifyOptions {
  /** Entries read per query. @defaultValue 2000 */
  batchSize?: number
  /** Called after each batch: entries checked so far and the head's seq (for long chains). */
  onProgress?: (checked: number, total: number) => void
  /** A head published earlier: the chain must still hold this hash at this seq. */
  anchor?: { seq: number; hash: string }
}

export interface VerifyResult {
  ok: boolean
  /** Entries checked (up to the first broken one). */
  checked: number
  /** The last entry when the walk started: publish it to anchor the trail. Null for an empty trail. */
  head: { seq: number; hash: string; time: string } | null
  /** The first entry that does not hold, and why. */
  broken: { seq: number; reason: BreakReason; message: string } | null
}

export async function verifyChain(db: Pick<Pool, 'query'>, o: VerifyOptions = {}): Promise<VerifyResult> {
  const batch = o.batchSize ?? 2000
  const { rows: heads } = await db.query<{ seq: string; hash: string; time: string }>(
    `SELECT seq::text, hash, ${TIME_TEXT('time')} AS time FROM audit_log ORDER BY audit_log.seq DESC LIMIT 1`
  )
  const head = heads[0] ? { seq: Number(heads[0].seq), hash: heads[0].hash, time: heads[0].time } : null
  const total = head?.seq ?? 0
  const fail = (checked: number, seq: number, reason: BreakReason, message: string): VerifyResult => ({
    ok: false,
    checked,
    head,
    broken: { seq, reason, message }
  })

  let expected = 1
  let prevHash = GENESIS_HASH
  let anchorHash: string | null = null
  let checked = 0
  // Pages of at most `batch` consecutive seqs, from the lowest stored (a forged entry below 1 shows too) to the head
  // read above (entries appended since are left for the next run). A range of seqs rather than LIMIT: without
  // statistics the planner would otherwise sort the whole rest of the table for every page.
  let after = await nextStored(db, null, total)
  while (after !== null) {
    const { rows } = await db.query<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM audit_log WHERE seq > $1::bigint AND seq <= least($1::bigint + $3, $2) ORDER BY audit_log.seq`,
      [after, total, batch]
    )
    if (rows.length === 0) {
      // A hole at least a page wide: go on from the next stored entry, which the loop then reports as a gap.
      after = await nextStored(db, after, total)
      continue
    }
    for (const r of rows) {
      const seq = Number(r.seq)
      if (seq > expected) {
        const missing = seq - expected === 1 ? `entry ${expected} is missing` : `entries ${expected}–${seq - 1} are missing`
        return fail(checked, expected, 'gap', `${missing} (the next stored entry is ${seq})`)
      }
      if (seq < expected) return fail(checked, seq, 'sequence', `entry ${seq} is out of sequence (expected ${expected})`)
      if (r.prev_hash !== prevHash) {
        return fail(checked, seq, 'broken_link', `entry ${seq} does not link to entry ${seq - 1}: its prev_hash is not that entry's hash`)
      }
      const recomputed = chainHash(r.prev_hash, {
        seq,
        time: r.time,
        actor: r.actor,
        action: r.action,
        subjectKind: r.subject_kind,
        subjectId: r.subject_id,
        jurisdictionId: r.jurisdiction_id,
        detail: r.detail
      })
      if (recomputed !== r.hash) {
        return fail(checked, seq, 'hash_mismatch', `entry ${seq} (${r.action} ${r.subject_kind} ${r.subject_id}) was altered: its fields do not hash to its stored hash`)
      }
      if (o.anchor && seq === o.anchor.seq) anchorHash = r.hash
      prevHash = r.hash
      expected = seq + 1
      checked++
    }
    after = rows[rows.length - 1]!.seq
    o.onProgress?.(checked, total)
    if (Number(after) >= total) break
  }

  if (o.anchor) {
    if (anchorHash === null) {
      return fail(checked, o.anchor.seq, 'anchor_mismatch', `entry ${o.anchor.seq}, published as an anchor, is no longer in the trail: it was cut back`)
    }
    if (anchorHash !== o.anchor.hash.toLowerCase()) {
      return fail(checked, o.anchor.seq, 'anchor_mismatch', `entry ${o.anchor.seq} no longer has the hash published as an anchor: the trail up to it was rewritten`)
    }
  }
  return { ok: true, checked, head, broken: null }
}

/** The seq just below the first stored entry after `after` (null: from the start), up to `total`; null when none. */
async function nextStored(db: Pick<Pool, 'query'>, after: string | null, total: number): Promise<string | null> {
  const { rows } = await db.query<{ before: string | null }>(
    'SELECT (min(seq) - 1)::text AS before FROM audit_log WHERE ($1::bigint IS NULL OR seq > $1::bigint) AND seq <= $2',
    [after, total]
  )
  return rows[0]?.before ?? null
}
