/** The unit risk score: `GET /api/v1/units/{id}/risk`, current value and history. A unit outside the caller's scope answers 404. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RiskService } from '../../alerts/risk.js'
import { FirewatchError } from '../../errors.js'
import { ErrorReply, IdParams } from '../../../schemas/api.js'
import { RiskHistory, RiskHistoryQuery, UnitRisk } from '../../../schemas/alerts.js'
import { range } from './telemetry.js'

export interface RiskDeps {
  risk: RiskService
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply }
const tags = ['risk']
const WEEK = 7 * 24 * 3600 * 1000

const notFound = (id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `unit ${id} does not exist`, { statusCode: 404 })

export const riskRoutes =
  ({ risk }: RiskDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/units/:id/risk',
      {
        config: { scope: 'unit' },
        schema: {
          tags,
          description: 'The latest risk score (0–100), its level and the factors that made it; recomputed on every alert change.',
          params: IdParams,
          response: { 200: UnitRisk, ...errors }
        }
      },
      async (req) => (await risk.get(req.params.id)) ?? Promise.reject(notFound(req.params.id))
    )

    app.get(
      '/units/:id/risk/history',
      {
        config: { scope: 'unit' },
        schema: {
          tags,
          description: 'Every score computed in the range (default: the last 7 days), oldest first.',
          params: IdParams,
          querystring: RiskHistoryQuery,
          response: { 200: RiskHistory, ...errors }
        }
      },
      async (req) => {
        const r = range(req.query.from, req.query.to, WEEK)
        if (!(await risk.exists(req.params.id))) throw notFound(req.params.id)
        const points = await risk.history(req.params.id, new Date(r.from), new Date(r.to))
        return { unitId: req.params.id, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), points }
      }
    )
  }
