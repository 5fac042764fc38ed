/** Alerts and the unit risk score: the API shapes, also the types the engine and the repository use. */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { Id } from './api.js'

const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

/** Fire-code classes of GB/T 26875.3 and NFPA 72. */
export const ALERT_CLASSES = ['fire', 'supervisory', 'trouble', 'isolation', 'test'] as const
export type AlertClass = (typeof ALERT_CLASSES)[number]
export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const
export type Severity = (typeof SEVERITIES)[number]
export const TROUBLE_TYPES = [
  'fault',
  'power_fault',
  'communication_loss',
  'tamper',
  'low_battery',
  'isolation_expired',
  'maintenance'
] as const
export type TroubleType = (typeof TROUBLE_TYPES)[number]
export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const
export type AlertStatus = (typeof ALERT_STATUSES)[number]
/** What an operator found; `restored` is the system's own, for a trouble or supervisory that cleared itself. */
export const OPERATOR_DISPOSITIONS = ['real_fire', 'false_alarm', 'test', 'device_fault', 'other'] as const
export type OperatorDisposition = (typeof OPERATOR_DISPOSITIONS)[number]
export type Disposition = OperatorDisposition | 'restored'
export const VERIFICATIONS = ['single_source', 'two_sources', 'operator'] as const
export type Verification = (typeof VERIFICATIONS)[number]

/** A union of string literals whose static type keeps the literals (a plain map() widens them to string). */
const lit = <T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> => Type.Union(values.map((v) => Type.Literal(v)))

export const AlertClassSchema = lit(ALERT_CLASSES)
export const SeveritySchema = lit(SEVERITIES)
export const AlertStatusSchema = lit(ALERT_STATUSES)

export const Alert = Type.Object({
  id: Type.String({ pattern: '^[0-9]+$' }),
  unitId: Id,
  deviceId: Type.String({ description: "'' for unit-level alerts" }),
  point: Type.String({ description: "the panel's point for event alerts, '' otherwise" }),
  ruleId: Type.String(),
  class: AlertClassSchema,
  troubleType: Type.Union([lit(TROUBLE_TYPES), Type.Null()]),
  severity: SeveritySchema,
  title: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
  status: AlertStatusSchema,
  active: Type.Boolean({ description: 'whether the condition that raised it still holds' }),
  count: Type.Integer({ description: 'times the condition was raised while this alert was open' }),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  clearedAt: Nullable(Timestamp),
  verification: Type.Union([lit(VERIFICATIONS), Type.Null()]),
  escalationLevel: Type.Integer(),
  escalatedAt: Nullable(Timestamp),
  acknowledgedAt: Nullable(Timestamp),
  acknowledgedBy: Nullable(Type.String()),
  confirmedAt: Nullable(Timestamp),
  confirmedBy: Nullable(Type.String()),
  resolvedAt: Nullable(Timestamp),
  resolvedBy: Nullable(Type.String()),
  disposition: Type.Union([lit([...OPERATOR_DISPOSITIONS, 'restored'] as const), Type.Null()]),
  resolutionComment: Nullable(Type.String()),
  isolationOwner: Nullable(Type.String()),
  isolationExpiresAt: Nullable(Timestamp)
})
export type Alert = Static<typeof Alert>

export const AlertTransition = Type.Object({
  id: Type.String(),
  at: Timestamp,
  action: Type.String({ description: 'opened, recurred, restored, cleared, escalated, reminded, upgraded, acknowledged, confirmed, resolved, isolation_set; forwarded_119 and forward_119_failed record the 119 forward (docs/NOTIFICATIONS.md)' }),
  actor: Type.String({ description: "'system' for the engine" }),
  comment: Nullable(Type.String()),
  fromStatus: Nullable(Type.String()),
  toStatus: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown())
})
export type AlertTransition = Static<typeof AlertTransition>

export const AlertWithHistory = Type.Intersect([Alert, Type.Object({ transitions: Type.Array(AlertTransition) })])

export const AlertsQuery = Type.Object({
  status: Type.Optional(Type.Union([AlertStatusSchema, Type.Literal('unresolved')])),
  unitId: Type.Optional(Id),
  deviceId: Type.Optional(Id),
  class: Type.Optional(AlertClassSchema),
  severity: Type.Optional(SeveritySchema),
  ruleId: Type.Optional(Type.String({ maxLength: 64 })),
  from: Type.Optional(Timestamp),
  to: Type.Optional(Timestamp),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
})
export type AlertsQuery = Static<typeof AlertsQuery>

export const AckBody = Type.Object({ comment: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false })
export const ResolveBody = Type.Object(
  { disposition: lit(OPERATOR_DISPOSITIONS), comment: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false }
)
export const IsolationBody = Type.Object(
  {
    owner: Type.String({ minLength: 1, maxLength: 200, description: 'who is responsible for the isolation (屏蔽)' }),
    expiresAt: Timestamp,
    comment: Type.Optional(Type.String({ maxLength: 2000 }))
  },
  { additionalProperties: false }
)
export const TestModeBody = Type.Object(
  { minutes: Type.Integer({ minimum: 1, maximum: 7 * 24 * 60, description: 'test mode ends by itself after this' }) },
  { additionalProperties: false }
)

export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const
export type RiskLevel = (typeof RISK_LEVELS)[number]

export const RiskFactor = Type.Object({
  factor: Type.String({ description: 'open_fire, open_supervisory, open_trouble, offline_devices, active_isolations, false_alarm_rate, pressure_margin, category' }),
  points: Type.Number({ description: 'what it adds to the score' }),
  value: Type.Union([Type.Number(), Type.String(), Type.Null()]),
  note: Type.String()
})
export type RiskFactor = Static<typeof RiskFactor>

export const UnitRisk = Type.Object({
  unitId: Id,
  score: Type.Integer({ minimum: 0, maximum: 100 }),
  level: lit(RISK_LEVELS),
  factors: Type.Array(RiskFactor),
  computedAt: Timestamp
})
export type UnitRisk = Static<typeof UnitRisk>

export const RiskHistoryQuery = Type.Object({
  from: Type.Optional(Type.String({ format: 'date-time', description: 'default: 7 days before `to`' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'default: now' }))
})
export type RiskHistoryQuery = Static<typeof RiskHistoryQuery>

export const RiskHistory = Type.Object({
  unitId: Id,
  from: Timestamp,
  to: Timestamp,
  points: Type.Array(
    Type.Object({ ts: Type.Integer({ description: 'epoch ms' }), score: Type.Integer({ minimum: 0, maximum: 100 }), level: lit(RISK_LEVELS) }),
    { description: 'every score computed in the range, oldest first; at most the newest 10,000' }
  )
})
export type RiskHistory = Static<typeof RiskHistory>
