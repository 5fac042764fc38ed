/** `GET /api/v1/risk`: the units of the caller's jurisdiction subtree ranked by risk, a page at a time, for the console's risk list. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { CursorList, ErrorReply } from '../../../schemas/api.js'
import { RankedUnit, RiskRankingQuery } from '../../../schemas/risk-ranking.js'
import { rankUnits, type RankingKey } from '../../alerts/risk-ranking.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { FirewatchError } from '../../errors.js'
import type { RiskDeps } from './risk.js'

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/
/** A ranking cursor holds [score or null, unit id]. */
const isRankingKey = (k: unknown[]): k is [number | null, string] =>
  k.length === 2 && (k[0] === null || (Number.isInteger(k[0]) && (k[0] as number) >= 0 && (k[0] as number) <= 100)) && typeof k[1] === 'string' && ID.test(k[1])

export const riskRankingRoutes =
  ({ risk }: RiskDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/risk',
      {
        schema: {
          tags: ['risk'],
          description:
            "Units of the caller's jurisdiction subtree (`jurisdictionId` narrows it; one outside lists nothing), highest risk score first, " +
            'equal scores by unit id, units never scored last (by unit id), with their open alerts and offline devices. ' +
            'A page of `limit` units; `nextCursor` continues after its last unit (null on the last page). ' +
            'Units never scored are scored on the way, on a first page (no cursor). Scores change with alerts: a unit whose score ' +
            'changed while a client walks the pages may show twice or not at all in that walk.',
          querystring: RiskRankingQuery,
          response: { 200: CursorList(RankedUnit), 400: ErrorReply, 401: ErrorReply, 403: ErrorReply }
        }
      },
      async (req) => {
        const { cursor, ...q } = req.query
        let after: RankingKey | undefined
        if (cursor !== undefined) {
          if (q.offset > 0) throw new FirewatchError('FW_ERR_VALIDATION', 'querystring.offset cannot be combined with cursor', { statusCode: 400, field: 'offset' })
          const [score, unitId] = decodeCursor(cursor, isRankingKey)
          after = { score, unitId }
        }
        const { items, total, next } = await rankUnits(risk, { ...q, after }, req.principal.scope)
        return { items, total, nextCursor: next ? encodeCursor([next.score, next.unitId]) : null }
      }
    )
  }
