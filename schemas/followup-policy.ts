/**
 * The follow-up policy file (rules/followup.yaml, or FOLLOWUP_FILE): which risk warnings open a case, the
 * rectification deadline, what counts as rectified in the device data, and the credit rules. docs/FOLLOWUP.md
 * explains each field and where its default comes from; src/followup/policy.ts checks the file at start.
 */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { ALERT_CLASSES } from './alerts.js'

const lit = <T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> => Type.Union(values.map((v) => Type.Literal(v)))
const PolicyId = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })
/** Seconds; at most a year. */
const Seconds = Type.Integer({ minimum: 0, maximum: 366 * 86400 })
const Positive = Type.Integer({ minimum: 1, maximum: 1000 })

export const CASE_SEVERITIES = ['major', 'general'] as const
export const UNIT_CATEGORIES = ['high_risk', 'key', 'general'] as const

/** An alert of these classes / rules left unresolved for `forS` opens (or joins) the policy's case. */
export const AlertOpenTrigger = Type.Object(
  {
    classes: Type.Optional(Type.Array(lit(ALERT_CLASSES), { minItems: 1, uniqueItems: true })),
    rules: Type.Optional(Type.Array(PolicyId, { minItems: 1, uniqueItems: true })),
    /** Only in units of these categories. @defaultValue every category */
    unitCategories: Type.Optional(Type.Array(lit(UNIT_CATEGORIES), { minItems: 1, uniqueItems: true })),
    forS: Seconds
  },
  { additionalProperties: false }
)
export type AlertOpenTrigger = Static<typeof AlertOpenTrigger>

/** A unit's computed risk level reaching `atLeast` opens the policy's case. */
export const RiskLevelTrigger = Type.Object({ atLeast: lit(['medium', 'high', 'critical'] as const) }, { additionalProperties: false })
export type RiskLevelTrigger = Static<typeof RiskLevelTrigger>

export const PolicySpec = Type.Object(
  {
    id: PolicyId,
    title: Type.String({ minLength: 1, maxLength: 200 }),
    titleZh: Type.Optional(Type.String({ maxLength: 200 })),
    severity: lit(CASE_SEVERITIES),
    /** Rectification deadline after the case opens. @defaultValue defaults.deadlineS */
    deadlineS: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86400 })),
    when: Type.Union([Type.Object({ alertOpen: AlertOpenTrigger }, { additionalProperties: false }), Type.Object({ riskLevel: RiskLevelTrigger }, { additionalProperties: false })]),
    enabled: Type.Optional(Type.Boolean())
  },
  { additionalProperties: false }
)
export type PolicySpec = Static<typeof PolicySpec>

export const FollowUpFile = Type.Object(
  {
    defaults: Type.Object(
      {
        /** Rectification deadline of a case opened by hand, and of a policy without its own. */
        deadlineS: Type.Integer({ minimum: 1, maximum: 366 * 86400 })
      },
      { additionalProperties: false }
    ),
    policies: Type.Array(PolicySpec),
    evidence: Type.Object(
      {
        /** Sprinkler pressure must have stayed within limits this long before the rectification counts. */
        pressureHoldS: Type.Integer({ minimum: 1, maximum: 30 * 86400 }),
        pressureMinMpa: Type.Number({ minimum: 0 }),
        pressureMaxMpa: Type.Number({ exclusiveMinimum: 0 })
      },
      { additionalProperties: false }
    ),
    credit: Type.Object(
      {
        /** Active points at or above this list the unit as dishonest (失信). */
        dishonestPoints: Positive,
        points: Type.Object(
          { overdueMajor: Positive, refusedRectification: Positive, repeatedViolations: Positive },
          { additionalProperties: false }
        ),
        repeatedViolations: Type.Object({ cases: Type.Integer({ minimum: 2, maximum: 1000 }), withinS: Type.Integer({ minimum: 1, maximum: 3 * 366 * 86400 }) }, { additionalProperties: false }),
        /** A case's entries are repaired once it is verified and the unit has had no new entry for this long. */
        repairAfterCleanS: Type.Integer({ minimum: 0, maximum: 3 * 366 * 86400 }),
        /** How often the repair sweep runs. */
        sweepEveryS: Type.Integer({ minimum: 1, maximum: 86400 })
      },
      { additionalProperties: false }
    )
  },
  { additionalProperties: false }
)
export type FollowUpFile = Static<typeof FollowUpFile>
