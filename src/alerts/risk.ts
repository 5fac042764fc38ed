/** Unit risk score (placeholder with the final interface: being written). */
import type { Pool } from '../store/postgres.js'
import type { InfluxStore } from '../store/influx.js'
import type { Logger } from '../logger.js'
import type { UnitRisk } from '../../schemas/alerts.js'

export interface RiskDeps {
  pool: Pool
  store: InfluxStore
  log: Logger
}

export class RiskService {
  constructor(readonly deps: RiskDeps) {}
  async recompute(_unitId: string): Promise<UnitRisk> {
    throw new Error('not yet')
  }
  async get(_unitId: string): Promise<UnitRisk | null> {
    return null
  }
  async history(_unitId: string, _from: Date, _to: Date): Promise<{ ts: number; score: number; level: string }[]> {
    return []
  }
}
