/** Unit credit records: the dishonest (失信) list and a unit's standing with its history. Scoped like units. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { CreditService } from '../../followup/credit-service.js'
import { FirewatchError } from '../../errors.js'
import { ErrorReply, IdParams, List } from '../../../schemas/api.js'
import { CreditQuery, CreditStandingReply, UnitCredit } from '../../../schemas/cases.js'

export interface CreditDeps {
  credit: CreditService
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply }
const tags = ['credit']

export const creditRoutes =
  ({ credit }: CreditDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/credit',
      {
        schema: {
          tags,
          description:
            "Units of the caller's jurisdiction subtree with credit entries, most points first, with the reasons of the entries not repaired. `dishonest=true`: the units listed as dishonest (失信), at or past the policy's points threshold.",
          querystring: CreditQuery,
          response: { 200: List(CreditStandingReply), ...errors }
        }
      },
      async (req) => credit.list(req.principal.scope, req.query)
    )

    app.get(
      '/units/:id/credit',
      {
        config: { scope: 'unit' },
        schema: { tags, description: "A unit's credit standing and every entry, repaired ones kept (newest first).", params: IdParams, response: { 200: UnitCredit, ...errors } }
      },
      async (req) => {
        const exists = await credit.unitExists(req.params.id)
        if (!exists) throw notFoundUnit(req.params.id)
        return credit.unit(req.params.id)
      }
    )
  }

const notFoundUnit = (id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `unit ${id} does not exist`, { statusCode: 404 })
