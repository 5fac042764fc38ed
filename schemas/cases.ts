/** Follow-up cases and credit records over the HTTP API (src/api/routes/cases.ts, credit.ts). */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { Id } from './api.js'
import { CASE_SEVERITIES } from './followup-policy.js'

const lit = <T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> => Type.Union(values.map((v) => Type.Literal(v)))
const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const CASE_STATUSES = ['open', 'assigned', 'rectification_submitted', 'verified', 'closed', 'overdue'] as const
export type CaseStatus = (typeof CASE_STATUSES)[number]
export const CREDIT_KINDS = ['overdue_major', 'refused_rectification', 'repeated_violations'] as const
export type CreditKind = (typeof CREDIT_KINDS)[number]

export const Evidence = Type.Object({
  check: Type.String({ description: 'alerts_resolved, devices_online, isolation_lifted, pressure_normal' }),
  ok: Type.Boolean(),
  detail: Type.String()
})
export type Evidence = Static<typeof Evidence>

export const Case = Type.Object({
  id: Type.String(),
  unitId: Type.String(),
  policy: Nullable(Type.String({ description: 'the follow-up policy that opened it; null when opened by hand' })),
  status: lit(CASE_STATUSES),
  severity: lit(CASE_SEVERITIES),
  title: Type.String(),
  description: Type.String(),
  openedAt: Timestamp,
  openedBy: Type.String(),
  deadline: Timestamp,
  assignee: Nullable(Type.String({ description: "the inspector's user id" })),
  assignedAt: Nullable(Timestamp),
  submittedAt: Nullable(Timestamp),
  verifiedAt: Nullable(Timestamp),
  verifiedBy: Nullable(Type.String()),
  closedAt: Nullable(Timestamp),
  overdueAt: Nullable(Timestamp),
  evidence: Type.Array(Evidence),
  evidenceAt: Nullable(Timestamp)
})
export type Case = Static<typeof Case>

export const Attachment = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    ref: Type.String({ minLength: 1, maxLength: 1000, description: 'where the file is kept (document system, object store); no file is stored here' })
  },
  { additionalProperties: false }
)
export type Attachment = Static<typeof Attachment>

export const CaseTransition = Type.Object({
  id: Type.String(),
  at: Timestamp,
  action: Type.String(),
  actor: Type.String(),
  comment: Nullable(Type.String()),
  fromStatus: Nullable(Type.String()),
  toStatus: Type.String(),
  attachments: Type.Array(Attachment),
  data: Type.Record(Type.String(), Type.Unknown())
})
export type CaseTransition = Static<typeof CaseTransition>

export const CaseAlert = Type.Object({
  id: Type.String(),
  ruleId: Type.String(),
  class: Type.String(),
  title: Type.String(),
  status: Type.String(),
  active: Type.Boolean(),
  deviceId: Type.String(),
  linkedAt: Timestamp
})

export const CaseDetail = Type.Intersect([Case, Type.Object({ transitions: Type.Array(CaseTransition), alerts: Type.Array(CaseAlert) })])

export const CasesQuery = Type.Object(
  {
    status: Type.Optional(lit(CASE_STATUSES)),
    unitId: Type.Optional(Id),
    assignee: Type.Optional(Id),
    overdue: Type.Optional(Type.Boolean({ description: 'true: cases that went overdue at some point (overdueAt set); false: never' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    offset: Type.Integer({ minimum: 0, default: 0 })
  },
  { additionalProperties: false }
)
export type CasesQuery = Static<typeof CasesQuery>

const StepFields = {
  comment: Type.Optional(Type.String({ maxLength: 2000 })),
  attachments: Type.Optional(Type.Array(Attachment, { maxItems: 50 }))
}
export const CaseStepBody = Type.Object(StepFields, { additionalProperties: false })
export type CaseStepBody = Static<typeof CaseStepBody>

export const CaseAssignBody = Type.Object({ assignee: Id, ...StepFields }, { additionalProperties: false })
export type CaseAssignBody = Static<typeof CaseAssignBody>

export const CaseCreate = Type.Object(
  {
    unitId: Id,
    severity: lit(CASE_SEVERITIES),
    title: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    deadline: Type.Optional(Type.String({ format: 'date-time', description: 'default: now + the policy file’s defaults.deadlineS' })),
    alertIds: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9]{1,18}$' }), { maxItems: 100 })),
    ...StepFields
  },
  { additionalProperties: false }
)
export type CaseCreate = Static<typeof CaseCreate>

/** The reply of a step: the case, and whether the evidence was all ok when it was taken. */
export const CaseStepReply = Type.Intersect([
  Case,
  Type.Object({ evidenceOk: Type.Boolean(), warning: Type.Optional(Type.String({ description: 'set when the step was taken with evidence not all ok' })) })
])

export const CreditEntry = Type.Object({
  id: Type.String(),
  unitId: Type.String(),
  kind: lit(CREDIT_KINDS),
  points: Type.Integer(),
  reason: Type.String(),
  caseId: Nullable(Type.String()),
  createdAt: Timestamp,
  repairedAt: Nullable(Timestamp),
  repairReason: Nullable(Type.String())
})
export type CreditEntry = Static<typeof CreditEntry>

export const CreditStandingReply = Type.Object({
  unitId: Type.String(),
  dishonest: Type.Boolean(),
  points: Type.Integer({ description: 'points of the entries not repaired' }),
  activeEntries: Type.Integer(),
  threshold: Type.Integer({ description: 'points at which a unit is listed as dishonest (失信)' }),
  reasons: Type.Array(Type.String(), { description: 'reasons of the entries not repaired' })
})
export type CreditStandingReply = Static<typeof CreditStandingReply>

export const UnitCredit = Type.Intersect([CreditStandingReply, Type.Object({ entries: Type.Array(CreditEntry, { description: 'every entry, repaired ones too, newest first' }) })])

export const CreditQuery = Type.Object(
  {
    dishonest: Type.Optional(Type.Boolean()),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    offset: Type.Integer({ minimum: 0, default: 0 })
  },
  { additionalProperties: false }
)
export type CreditQuery = Static<typeof CreditQuery>
