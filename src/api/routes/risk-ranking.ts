/** `GET /api/v1/risk`: the units of the caller's jurisdiction subtree ranked by risk, for the console's risk list. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply, List } from '../../../schemas/api.js'
import { RankedUnit, RiskRankingQuery } from '../../../schemas/risk-ranking.js'
import { rankUnits } from '../../alerts/risk-ranking.js'
import type { RiskDeps } from './risk.js'

export const riskRankingRoutes =
  ({ risk }: RiskDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/risk',
      {
        schema: {
          tags: ['risk'],
          description:
            "Units of the caller's jurisdiction subtree (`jurisdictionId` narrows it; one outside lists nothing), highest " +
            'risk score first, with their open alerts and offline devices. Units never scored are scored on the way.',
          querystring: RiskRankingQuery,
          response: { 200: List(RankedUnit), 400: ErrorReply, 401: ErrorReply, 403: ErrorReply }
        }
      },
      async (req) => rankUnits(risk, req.query, req.principal.scope)
    )
  }
