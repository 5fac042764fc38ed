/** The audit trail's API: entries, the query, and the verification report (src/audit/, docs/AUDIT.md). */
import { Type, type Static } from '@sinclair/typebox'

const Timestamp = Type.String({ format: 'date-time' })
const Hash = Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256, hex' })
const Text = Type.String({ minLength: 1, maxLength: 200 })

export const AuditEntry = Type.Object({
  seq: Type.Integer({ minimum: 1, description: '1, 2, 3 … without gaps' }),
  time: Type.String({ description: 'UTC with microseconds, exactly as hashed' }),
  actor: Type.String({ description: "the principal's name; 'system' for the server's own steps" }),
  action: Type.String({ description: 'a dotted verb: alert.acknowledged, unit.created …' }),
  subjectKind: Type.String(),
  subjectId: Type.String(),
  jurisdictionId: Type.Union([Type.String(), Type.Null()], { description: 'null: a system-wide entry' }),
  detail: Type.Record(Type.String(), Type.Unknown()),
  prevHash: Hash,
  hash: Hash
})
export type AuditEntry = Static<typeof AuditEntry>

export const AuditQuery = Type.Object({
  subjectKind: Type.Optional(Text),
  subjectId: Type.Optional(Text),
  actor: Type.Optional(Text),
  action: Type.Optional(Text),
  from: Type.Optional(Timestamp),
  to: Type.Optional(Timestamp),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
})
export type AuditQuery = Static<typeof AuditQuery>

export const VerifyQuery = Type.Object({
  anchorSeq: Type.Optional(Type.Integer({ minimum: 1, description: 'the seq of a head published earlier' })),
  anchorHash: Type.Optional(Hash)
})

export const BREAK_REASONS = ['gap', 'sequence', 'broken_link', 'hash_mismatch', 'anchor_mismatch'] as const

export const VerifyReport = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'entries checked, up to the first broken one' }),
  head: Type.Union([Type.Object({ seq: Type.Integer(), hash: Hash, time: Type.String() }), Type.Null()], {
    description: 'the last entry when the check started: publish it, and pass it back as the anchor later'
  }),
  broken: Type.Union([
    Type.Object({
      seq: Type.Integer({ description: 'the first entry that does not hold' }),
      reason: Type.Union(BREAK_REASONS.map((r) => Type.Literal(r))),
      message: Type.String()
    }),
    Type.Null()
  ])
})
