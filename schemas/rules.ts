/**
 * Rule files (rules/*.yaml): declarative rules, per-unit and per-device overrides, and the correlation of
 * fire alarms with a second source in the same unit. docs/RULES.md explains each field with examples.
 *
 * The top level is checked by these schemas; each condition tree (`when`) is checked leaf by leaf in
 * src/rules/rule-set.ts, so an error names the rule and the exact field instead of a union's guesswork.
 */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { EVENT_TYPES } from './device-payloads.js'
import { DEVICE_KINDS } from './device-profile.js'
import { ALERT_CLASSES, SEVERITIES, TROUBLE_TYPES } from './alerts.js'

/** A union of string literals whose static type keeps the literals (a plain map() widens them to string). */
const lit = <T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> => Type.Union(values.map((v) => Type.Literal(v)))
const RuleId = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })
const Metric = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })
/** Seconds; at most 30 days. */
const Seconds = Type.Integer({ minimum: 0, maximum: 30 * 86400 })
export const EventType = lit(EVENT_TYPES)

/** An event of one of `types` raises; one of `clearOn` at the same point (or with no point: every point) clears. */
export const EventLeaf = Type.Object(
  {
    types: Type.Array(EventType, { minItems: 1, uniqueItems: true }),
    /** @defaultValue [restore, reset] */
    clearOn: Type.Optional(Type.Array(EventType, { uniqueItems: true })),
    /** Only events whose text matches this regular expression (case-insensitive), e.g. a water-flow indicator. */
    textMatches: Type.Optional(Type.String({ minLength: 1, maxLength: 200 }))
  },
  { additionalProperties: false }
)
export type EventLeaf = Static<typeof EventLeaf>

/** Edge-triggered with hysteresis: raised beyond the limit, cleared only back past `clear`. */
export const ThresholdLeaf = Type.Object(
  {
    metric: Metric,
    below: Type.Optional(Type.Number()),
    above: Type.Optional(Type.Number()),
    /** The level the value must come back past to clear; defaults to the limit itself (no hysteresis). */
    clear: Type.Optional(Type.Number())
  },
  { additionalProperties: false }
)
export type ThresholdLeaf = Static<typeof ThresholdLeaf>

/** The value fell (or rose) by at least this much within `withinS` seconds: e.g. 0.05 MPa within 60 s. */
export const RateLeaf = Type.Object(
  {
    metric: Metric,
    fallsBy: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    risesBy: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    withinS: Type.Integer({ minimum: 1, maximum: 86400 }),
    /** The condition holds this long after the last fast change before it can clear. @defaultValue withinS */
    holdS: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400 }))
  },
  { additionalProperties: false }
)
export type RateLeaf = Static<typeof RateLeaf>

/** Nothing heard from the device for `afterS` seconds; defaults to its profile's patrol period (GB 50440: ≤ 2 h). */
export const DeadmanLeaf = Type.Object({ afterS: Type.Optional(Type.Integer({ minimum: 10, maximum: 7 * 86400 })) }, { additionalProperties: false })
export type DeadmanLeaf = Static<typeof DeadmanLeaf>

/** An isolation (屏蔽) still in force after its expiry. Unit-level checks like this one stand alone in `when`. */
export const IsolationExpiredLeaf = Type.Object({}, { additionalProperties: false })

/** More fire alarms disposed of as false than `moreThan` within `withinS` in one unit (GB 50440 practice: 5 a day). */
export const FalseAlarmsLeaf = Type.Object(
  { moreThan: Type.Integer({ minimum: 0, maximum: 10000 }), withinS: Type.Integer({ minimum: 60, maximum: 90 * 86400 }) },
  { additionalProperties: false }
)
export type FalseAlarmsLeaf = Static<typeof FalseAlarmsLeaf>

export const LEAF_KINDS = ['event', 'threshold', 'rate', 'deadman', 'isolationExpired', 'falseAlarms'] as const

export const Rule = Type.Object(
  {
    id: RuleId,
    title: Type.String({ minLength: 1, maxLength: 200 }),
    /** The title in Chinese, shown by the console in its default language. */
    titleZh: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String()),
    class: lit(ALERT_CLASSES),
    /** Required for class trouble: what kind of trouble (GB/T 26875.3 status bits, NFPA 72 trouble signals). */
    troubleType: Type.Optional(lit(TROUBLE_TYPES)),
    severity: lit(SEVERITIES),
    /** Device kinds the rule applies to; absent means every kind. */
    kinds: Type.Optional(Type.Array(lit(DEVICE_KINDS), { minItems: 1, uniqueItems: true })),
    /** The condition: one leaf (`event`, `threshold`, `rate`, `deadman`, …) or `all` / `any` of conditions. */
    when: Type.Unknown(),
    /** The condition must hold this long before the alert opens (a BullMQ delayed job). @defaultValue 0 */
    forS: Type.Optional(Seconds),
    /** Escalate and remind while nobody acknowledges. @defaultValue true for class fire, false otherwise */
    escalate: Type.Optional(Type.Boolean()),
    /** For class isolation: how long an isolation lasts when nobody sets its expiry. @defaultValue 86400 */
    isolationExpiryS: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })),
    enabled: Type.Optional(Type.Boolean())
  },
  { additionalProperties: false }
)
export type RuleSpec = Static<typeof Rule>

/** Replaces fields of one rule for one unit or one device (a device override wins over a unit override). */
export const Override = Type.Object(
  {
    rule: RuleId,
    unit: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    enabled: Type.Optional(Type.Boolean()),
    severity: Type.Optional(lit(SEVERITIES)),
    forS: Type.Optional(Seconds),
    when: Type.Optional(Type.Unknown())
  },
  { additionalProperties: false }
)
export type OverrideSpec = Static<typeof Override>

export const Correlation = Type.Object(
  {
    /** How close in time the second source must be. */
    windowS: Type.Integer({ minimum: 1, maximum: 3600 }),
    /** Rules whose alerts are pre-alarms awaiting verification while they have a single source. */
    verify: Type.Array(RuleId, { minItems: 1 }),
    /** Rules whose alerts in the same unit confirm them (a second detector of a `verify` rule always does). */
    confirmBy: Type.Array(RuleId, { minItems: 1 })
  },
  { additionalProperties: false }
)
export type CorrelationSpec = Static<typeof Correlation>

export const RuleFile = Type.Object(
  {
    rules: Type.Optional(Type.Array(Rule)),
    overrides: Type.Optional(Type.Array(Override)),
    correlation: Type.Optional(Correlation)
  },
  { additionalProperties: false }
)
export type RuleFileSpec = Static<typeof RuleFile>
