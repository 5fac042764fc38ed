/** The unit risk score: `GET /api/v1/units/{id}/risk`, current value and history. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RiskService } from '../../alerts/risk.js'

export interface RiskDeps {
  risk: RiskService
}

export const riskRoutes =
  (_deps: RiskDeps): FastifyPluginAsyncTypebox =>
  async () => {}
