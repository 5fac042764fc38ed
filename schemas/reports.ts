/** Reports per jurisdiction and period (docs/INSPECTIONS.md, "Reports", defines every figure). */
import { Type, type Static } from '@sinclair/typebox'
import { Id } from './api.js'

const Timestamp = Type.String({ format: 'date-time' })
const Count = Type.Integer({ minimum: 0 })
const MaybeNumber = Type.Union([Type.Number(), Type.Null()])

export const ReportQuery = Type.Object({
  jurisdictionId: Id,
  from: Type.Optional(Type.String({ format: 'date-time', description: 'default: 30 days before `to`' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'default: now; the period is [from, to)' })),
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { description: 'or send `Accept: text/csv`' }))
})
export type ReportQuery = Static<typeof ReportQuery>

const FalseAlarmRate = Type.Object({
  falseAlarms: Count,
  resolvedFire: Count,
  rate: Type.Union([Type.Number(), Type.Null()], { description: 'falseAlarms / resolvedFire; null without resolved fire alerts' })
})

export const Summary = Type.Object({
  jurisdictionId: Id,
  from: Timestamp,
  to: Timestamp,
  generatedAt: Timestamp,
  alertsByClass: Type.Array(Type.Object({ class: Type.String(), count: Count })),
  alertsByDisposition: Type.Array(Type.Object({ disposition: Type.String({ description: "'unresolved' while not resolved" }), count: Count })),
  falseAlarms: Type.Object({ overall: FalseAlarmRate, units: Type.Array(Type.Object({ unitId: Id, ...FalseAlarmRate.properties })) }),
  responseTimes: Type.Array(
    Type.Object({
      class: Type.String({ description: "an alert class, or 'all'" }),
      acknowledged: Count,
      meanSecondsToAcknowledge: MaybeNumber,
      resolved: Count,
      meanSecondsToResolve: MaybeNumber
    })
  ),
  unitsByRisk: Type.Array(Type.Object({ level: Type.String({ description: "low, medium, high, critical, or 'unscored'" }), count: Count })),
  cases: Type.Array(
    Type.Object({
      severity: Type.String({ description: "major, general, or 'all'" }),
      opened: Count,
      overdue: Type.Integer({ minimum: 0, description: 'went overdue in the period' }),
      closed: Count
    })
  )
})
export type Summary = Static<typeof Summary>
