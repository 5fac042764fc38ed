/** The units in scope ranked by risk (`GET /api/v1/risk`): what the console's risk list shows, a page per call. */
import { Type, type Static } from '@sinclair/typebox'
import { Cursor, Id, UnitCategory } from './api.js'
import { RISK_LEVELS } from './alerts.js'

export const RiskRankingQuery = Type.Object({
  jurisdictionId: Type.Optional(Id),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Cursor),
  offset: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'deprecated, kept for older clients: skips that many units (its cost grows with it); use `cursor`. Not together with `cursor`.'
  })
})
export type RiskRankingQuery = Static<typeof RiskRankingQuery>

const Nullable = <T extends ReturnType<typeof Type.Integer | typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

export const RankedUnit = Type.Object({
  unitId: Id,
  name: Type.String(),
  address: Type.String(),
  category: UnitCategory,
  jurisdictionId: Id,
  score: Nullable(Type.Integer({ minimum: 0, maximum: 100, description: 'null only while the unit was never scored' })),
  level: Type.Union([...RISK_LEVELS.map((l) => Type.Literal(l)), Type.Null()]),
  computedAt: Nullable(Type.String({ format: 'date-time' })),
  openAlerts: Type.Integer({ description: 'open or acknowledged alerts of the unit' }),
  openFireAlerts: Type.Integer(),
  devices: Type.Integer(),
  offlineDevices: Type.Integer()
})
export type RankedUnit = Static<typeof RankedUnit>

