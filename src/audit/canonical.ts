/**
 * The canonical text of an audit entry: what its hash covers. Both sides build it the same way from what is stored
 * (the appender before the insert, the verifier from the row), so the hash is recomputable byte for byte:
 * - `detail` is stored as this exact text (a text column, not jsonb, which would reorder keys and normalise numbers)
 *   and is embedded verbatim, so a change of a single byte shows;
 * - `time` is the database's own rendering at microsecond precision (TIME_TEXT), never a JS Date (milliseconds);
 * - the fields appear in one fixed order.
 */
import { createHash } from 'node:crypto'

/** The `prev_hash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64)

/** SQL rendering a timestamptz as the canonical UTC text with microseconds: 2026-12-07T02:13:19.123456Z. */
export const TIME_TEXT = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

export interface CanonicalFields {
  seq: number
  /** TIME_TEXT's rendering. */
  time: string
  actor: string
  action: string
  subjectKind: string
  subjectId: string
  jurisdictionId: string | null
  /** Canonical JSON text of the detail object (canonicalJson). */
  detail: string
}

/**
 * JSON with object keys sorted at every depth; `undefined` members dropped as JSON.stringify drops them. Numbers are
 * JSON.stringify's shortest round-trip form, so the text does not depend on how the object was built.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return storable(v)
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>
      return Object.fromEntries(Object.keys(o).sort().map((k) => [storable(k), o[k]]))
    }
    return v
  })
}

// A lone UTF-16 surrogate or a NUL: JSON.stringify escapes them, but PostgreSQL's JSON refuses both, and text columns
// store a lone surrogate as U+FFFD anyway. Replaced the same way here, so a comment carrying one cannot fail the action.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
const storable = (s: string) => s.replace(LONE_SURROGATE, '\ufffd').split('\u0000').join('\ufffd')

/** The text hashed for one entry; `detail` goes in verbatim (it is already canonical JSON). */
export function canonicalEntry(f: CanonicalFields): string {
  const head = JSON.stringify({
    seq: f.seq,
    time: f.time,
    actor: f.actor,
    action: f.action,
    subjectKind: f.subjectKind,
    subjectId: f.subjectId,
    jurisdictionId: f.jurisdictionId
  })
  return `${head.slice(0, -1)},"detail":${f.detail}}`
}

/** hash(n) = SHA-256(hash(n-1) ‖ "\n" ‖ canonical(n)), lower-case hex. */
export function chainHash(prevHash: string, f: CanonicalFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalEntry(f)).digest('hex')
}
