/**
 * The audit trail: read the entries of one's subtree (administrators and inspectors), and verify the hash chain
 * (administrators). docs/AUDIT.md describes what is recorded and what a verification proves.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply, List } from '../../../schemas/api.js'
import { AuditEntry, AuditQuery, VerifyQuery, VerifyReport } from '../../../schemas/audit.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { FirewatchError } from '../../errors.js'

export interface AuditDeps {
  audit: AuditLog
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply }
const tags = ['audit']

export const auditRoutes =
  ({ audit }: AuditDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/audit',
      {
        config: { action: 'audit.read' },
        schema: {
          tags,
          description:
            "Audit entries, newest first. Administrators and inspectors; entries of the caller's jurisdiction subtree only, " +
            'and system-wide entries (no jurisdiction) only for callers bound to no jurisdiction.',
          querystring: AuditQuery,
          response: { 200: List(AuditEntry), ...errors }
        }
      },
      async (req) => audit.list(req.query, req.principal.scope)
    )

    app.get(
      '/audit/verify',
      {
        config: { action: 'audit.verify' },
        schema: {
          tags,
          description:
            'Recompute the hash chain of the whole trail and name the first entry that does not hold (gap, broken link, ' +
            'hash mismatch). The reply carries the head to publish elsewhere; passing a published head back as ' +
            '`anchorSeq` + `anchorHash` also catches a trail rewritten with recomputed hashes. Administrators; the reply ' +
            'names entries by seq only.',
          querystring: VerifyQuery,
          response: { 200: VerifyReport, ...errors }
        }
      },
      async (req) => {
        const { anchorSeq, anchorHash } = req.query
        if ((anchorSeq === undefined) !== (anchorHash === undefined)) {
          const field = anchorSeq === undefined ? 'anchorSeq' : 'anchorHash'
          throw new FirewatchError('FW_ERR_VALIDATION', 'anchorSeq and anchorHash go together', { statusCode: 400, field })
        }
        const result = await audit.verify(anchorSeq !== undefined && anchorHash !== undefined ? { anchor: { seq: anchorSeq, hash: anchorHash } } : {})
        if (!result.ok) req.log.error({ broken: result.broken, head: result.head }, 'audit trail verification failed')
        return result
      }
    )
  }
