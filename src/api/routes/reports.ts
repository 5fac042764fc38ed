/**
 * Reports: `GET /api/v1/reports/summary` per jurisdiction subtree and period, as JSON or CSV (`Accept: text/csv` or
 * `?format=csv`). A jurisdiction outside the caller's subtree answers 404, like one that does not exist.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ReportService } from '../../reports/summary.js'
import type { ScopeGuard } from '../../auth/scope.js'
import { summaryCsv } from '../../reports/csv.js'
import { FirewatchError } from '../../errors.js'
import { ErrorReply } from '../../../schemas/api.js'
import { ReportQuery, Summary } from '../../../schemas/reports.js'
import { range } from './telemetry.js'

export interface ReportDeps {
  reports: ReportService
  guard: ScopeGuard
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply }
const MONTH = 30 * 24 * 3600 * 1000

export const reportRoutes =
  ({ reports, guard }: ReportDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/reports/summary',
      {
        schema: {
          tags: ['reports'],
          description:
            'Alerts by class and disposition, false-alarm rates (overall and per unit), mean time to acknowledge and to resolve per class, ' +
            'units by risk level, follow-up cases opened, gone overdue and closed, for the jurisdiction subtree and the period [from, to). ' +
            'Definitions: docs/INSPECTIONS.md. ' +
            'As CSV (`section,key,metric,value`, one figure a row) with `Accept: text/csv` or `format=csv`.',
          querystring: ReportQuery,
          response: { 200: Summary, ...errors }
        }
      },
      async (req, reply) => {
        const { jurisdictionId } = req.query
        const r = range(req.query.from, req.query.to, MONTH)
        if (!(await guard.jurisdiction(req.principal, jurisdictionId)) || !(await reports.jurisdictionExists(jurisdictionId))) {
          throw new FirewatchError('FW_ERR_NOT_FOUND', `jurisdiction ${jurisdictionId} does not exist`, { statusCode: 404 })
        }
        const summary = await reports.summary(jurisdictionId, new Date(r.from), new Date(r.to))
        const csv = req.query.format === 'csv' || (req.query.format === undefined && req.headers.accept?.includes('text/csv'))
        if (!csv) return summary
        // A string under a text/csv type is sent as it is (the JSON schema types the reply, hence the cast).
        const name = `summary-${jurisdictionId}-${summary.from.slice(0, 10)}-${summary.to.slice(0, 10)}.csv`
        return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(summaryCsv(summary) as unknown as Summary)
      }
    )
  }
