/** Random inspections (双随机、一公开): draws, their public list and replay, conflicts of interest. */
import { Type, type Static } from '@sinclair/typebox'
import { Cursor, Id } from './api.js'
import { RISK_LEVELS } from './alerts.js'

const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])
const DrawId = Type.String({ pattern: '^[0-9]+$' })

export const DrawCreate = Type.Object(
  {
    jurisdictionId: Id,
    targets: Type.Integer({ minimum: 1, maximum: 1000, description: 'units to draw' }),
    inspectorsPerTarget: Type.Integer({ minimum: 1, maximum: 10, default: 2, description: 'two inspectors per inspection is the usual practice' }),
    seed: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'any text; when absent the server generates 128 random bits (32 hex digits)' })),
    note: Type.Optional(Type.String({ maxLength: 500 }))
  },
  { additionalProperties: false }
)
export type DrawCreate = Static<typeof DrawCreate>

export const DrawCandidate = Type.Object({
  unitId: Id,
  riskLevel: Type.Union([Type.Union(RISK_LEVELS.map((l) => Type.Literal(l))), Type.Null()], { description: 'null: no score yet (weighs as low)' }),
  dishonest: Type.Boolean(),
  activeEntries: Type.Integer(),
  weight: Type.Number()
})
export type DrawCandidate = Static<typeof DrawCandidate>

export const DrawTarget = Type.Object({
  rank: Type.Integer({ description: '1 for the first drawn' }),
  unitId: Id,
  key: Type.Number({ description: 'the Efraimidis–Spirakis key ln(1 − u) / weight that ranked it' }),
  inspectors: Type.Array(Type.String(), { description: 'user ids, in draw order' }),
  eligibleInspectors: Type.Array(Type.String(), { description: 'user ids drawn from, in the order used (by id)' }),
  shortfall: Type.Integer({ description: 'inspectors missing: fewer were eligible than asked for' })
})
export type DrawTarget = Static<typeof DrawTarget>

const WeightTable = Type.Object({
  risk: Type.Record(Type.String(), Type.Number()),
  credit: Type.Record(Type.String(), Type.Number())
})

const DrawBase = {
  id: DrawId,
  jurisdictionId: Id,
  seed: Type.String(),
  seedGenerated: Type.Boolean(),
  algorithm: Type.String(),
  targetsRequested: Type.Integer(),
  inspectorsPerTarget: Type.Integer(),
  note: Nullable(Type.String()),
  /** Targets whose inspectors fell short. */
  shortfalls: Type.Integer({ description: 'targets with fewer inspectors than asked for' }),
  createdBy: Type.String(),
  createdAt: Timestamp,
  publishedAt: Nullable(Timestamp),
  publishedBy: Nullable(Type.String())
}

export const DrawSummary = Type.Object({ ...DrawBase, candidateCount: Type.Integer(), targetCount: Type.Integer() })
export type DrawSummary = Static<typeof DrawSummary>

export const Draw = Type.Object({
  ...DrawBase,
  weights: WeightTable,
  candidateCount: Type.Integer({ description: 'units drawn from; the list itself, with weights, is GET …/draws/{id}/candidates' }),
  targets: Type.Array(DrawTarget)
})
export type Draw = Static<typeof Draw>

export const CandidatesQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Cursor)
})
export type CandidatesQuery = Static<typeof CandidatesQuery>

export const DrawsQuery = Type.Object({
  jurisdictionId: Type.Optional(Id),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
})
export type DrawsQuery = Static<typeof DrawsQuery>

export const DrawParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'numeric draw id' }) })

export const PublicDraw = Type.Object({
  id: DrawId,
  jurisdictionId: Id,
  jurisdictionName: Type.String(),
  seed: Type.String(),
  algorithm: Type.String(),
  inspectorsPerTarget: Type.Integer(),
  publishedAt: Timestamp,
  candidates: Type.Array(Type.Object({ unitId: Id, unitName: Type.String(), weight: Type.Number() })),
  targets: Type.Array(
    Type.Object({
      rank: Type.Integer(),
      unitId: Id,
      unitName: Type.String(),
      address: Type.String(),
      inspectors: Type.Array(Type.String(), { description: 'display names, in draw order' }),
      eligibleInspectors: Type.Array(Type.String(), { description: 'display names, in the order used (by user id)' }),
      shortfall: Type.Integer()
    })
  )
})
export type PublicDraw = Static<typeof PublicDraw>

export const DrawReplay = Type.Object({
  drawId: DrawId,
  matches: Type.Boolean({ description: 'the stored targets and inspectors are exactly what the seed and the stored lists give, and every weight is what the draw\'s table gives for the stored inputs' }),
  weightsMismatched: Type.Array(Type.String(), { description: 'candidates whose stored weight the table does not give' }),
  stored: Type.Array(Type.Object({ unitId: Type.String(), inspectors: Type.Array(Type.String()) })),
  replayed: Type.Array(Type.Object({ unitId: Type.String(), inspectors: Type.Array(Type.String()) }))
})
export type DrawReplay = Static<typeof DrawReplay>

export const ConflictCreate = Type.Object(
  { userId: Id, reason: Type.String({ minLength: 1, maxLength: 500, description: 'e.g. a relative works at the unit' }) },
  { additionalProperties: false }
)
export type ConflictCreate = Static<typeof ConflictCreate>

export const Conflict = Type.Object({ unitId: Id, userId: Id, reason: Type.String(), createdBy: Type.String(), createdAt: Timestamp })
export type Conflict = Static<typeof Conflict>

export const ConflictParams = Type.Object({ id: Id, userId: Id })
