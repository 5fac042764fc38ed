/**
 * Random inspections (双随机、一公开): make a draw, list and read draws, publish one, its public list and a replay;
 * conflicts of interest recorded against a unit. A draw belongs to its jurisdiction: one outside the caller's subtree
 * answers 404, checked before the role (as `config.scope` does for the registry), so a 403 never confirms it exists.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { DrawService } from '../../inspections/draw-service.js'
import type { ConflictRepository } from '../../inspections/conflict-repository.js'
import type { ScopeGuard } from '../../auth/scope.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { can, type Action, type Principal } from '../../auth/principal.js'
import { FirewatchError } from '../../errors.js'
import { CursorList, ErrorReply, IdParams, List } from '../../../schemas/api.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import {
  CandidatesQuery,
  Conflict,
  ConflictCreate,
  ConflictParams,
  Draw,
  DrawCandidate,
  DrawCreate,
  DrawParams,
  DrawReplay,
  DrawsQuery,
  DrawSummary,
  PublicDraw
} from '../../../schemas/inspections.js'

export interface InspectionDeps {
  draws: DrawService
  conflicts: ConflictRepository
  guard: ScopeGuard
  /** Conflicts recorded and removed are audited here, in the same transaction. */
  audit: AuditLog
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }
const tags = ['inspections']
const notFound = (what: string, id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `${what} ${id} does not exist`, { statusCode: 404 })
const missingRef = (field: string) => new FirewatchError('FW_ERR_VALIDATION', `${field} does not exist`, { statusCode: 400, field })
/** A candidates cursor holds [position of the previous page's last candidate]. */
const isPosition = (k: unknown[]): k is [number] => k.length === 1 && Number.isInteger(k[0]) && (k[0] as number) >= 0
const forbidden = (p: Principal, action: Action) =>
  new FirewatchError('FW_ERR_FORBIDDEN', `a ${p.role} may not ${action.replace('.', ' ')}`, { statusCode: 403 })

export const inspectionRoutes =
  ({ draws, conflicts, guard, audit }: InspectionDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    /** The draw, if it exists and is in the caller's subtree; then the role for `action`. */
    const drawFor = async (p: Principal, id: string, action: Action = 'read') => {
      const draw = await draws.repo.get(id)
      if (!draw || !(await guard.jurisdiction(p, draw.jurisdictionId))) throw notFound('draw', id)
      if (!can(p, action)) throw forbidden(p, action)
      return draw
    }

    app.post(
      '/inspections/draws',
      {
        config: { action: 'inspections.draw' },
        schema: {
          tags,
          description:
            'Draw `targets` units of the jurisdiction subtree, weighted by risk level and credit record, and `inspectorsPerTarget` inspectors for each ' +
            'from those covering the unit without a recorded conflict. Reproducible from the seed and the stored lists (docs/INSPECTIONS.md). ' +
            'A target with too few eligible inspectors keeps its place and reports the shortfall. Administrators and inspectors, in their subtree.',
          body: DrawCreate,
          response: { 201: Draw, ...errors }
        }
      },
      async (req, reply) => {
        const { jurisdictionId } = req.body
        if (!(await guard.jurisdiction(req.principal, jurisdictionId)) || !(await draws.repo.jurisdictionExists(jurisdictionId))) {
          throw missingRef('jurisdictionId')
        }
        return reply.status(201).send(await draws.make(req.body, req.principal.name))
      }
    )

    app.get(
      '/inspections/draws',
      {
        schema: {
          tags,
          description: "Draws of jurisdictions in the caller's subtree, newest first; `jurisdictionId` narrows to that subtree.",
          querystring: DrawsQuery,
          response: { 200: List(DrawSummary), ...errors }
        }
      },
      async (req) => draws.repo.list(req.query, req.principal.scope)
    )

    app.get(
      '/inspections/draws/:id',
      {
        schema: {
          tags,
          description:
            'The draw: seed, weight table, targets and inspectors, and how many candidates it drew from (`candidateCount`); ' +
            'the candidates themselves, a page at a time, are GET …/draws/{id}/candidates.',
          params: DrawParams,
          response: { 200: Draw, ...errors }
        }
      },
      async (req) => drawFor(req.principal, req.params.id)
    )

    app.get(
      '/inspections/draws/:id/candidates',
      {
        schema: {
          tags,
          description:
            'The units the draw drew from, with the inputs of their weights, in the order used (by unit id): `limit` at a time; ' +
            '`nextCursor` continues after the last (null on the last page). The pages joined are the whole list, as the replay uses it.',
          params: DrawParams,
          querystring: CandidatesQuery,
          response: { 200: CursorList(DrawCandidate), ...errors }
        }
      },
      async (req) => {
        const draw = await drawFor(req.principal, req.params.id)
        const [after] = req.query.cursor === undefined ? [-1] : decodeCursor(req.query.cursor, isPosition)
        const { items, next } = await draws.repo.candidatePage(draw.id, after, req.query.limit)
        return { items, total: draw.candidateCount, nextCursor: next === null ? null : encodeCursor([next]) }
      }
    )

    app.post(
      '/inspections/draws/:id/publish',
      {
        schema: {
          tags,
          description: 'Make the draw public (一公开): sets `publishedAt` once; publishing again changes nothing. Administrators and inspectors.',
          params: DrawParams,
          response: { 200: Draw, ...errors }
        }
      },
      async (req) => {
        await drawFor(req.principal, req.params.id, 'inspections.draw')
        return (await draws.publish(req.params.id, req.principal.name)) ?? Promise.reject(notFound('draw', req.params.id))
      }
    )

    app.get(
      '/inspections/draws/:id/replay',
      {
        schema: {
          tags,
          description: 'Run the draw again from its stored seed and lists and compare with what was stored.',
          params: DrawParams,
          response: { 200: DrawReplay, ...errors }
        }
      },
      async (req) => draws.replay(await drawFor(req.principal, req.params.id))
    )

    app.get(
      '/inspections/draws/:id/public',
      {
        config: { auth: 'none' },
        schema: {
          tags,
          security: [],
          description:
            'The published list, for anyone and without credentials: units, inspectors by display name, the seed and the weighted candidate list ' +
            'to re-run it. A draw not (yet) published answers 404 like one that does not exist.',
          params: DrawParams,
          response: { 200: PublicDraw, ...errors }
        }
      },
      async (req) => (await draws.publicView(req.params.id)) ?? Promise.reject(notFound('published draw', req.params.id))
    )

    app.post(
      '/units/:id/conflicts',
      {
        config: { scope: 'unit', action: 'conflicts.manage' },
        schema: {
          tags,
          description: 'Record that an inspector must not be drawn for this unit (回避). 409 when already recorded. Administrators.',
          params: IdParams,
          body: ConflictCreate,
          response: { 201: Conflict, ...errors }
        }
      },
      async (req, reply) => {
        const { userId, reason } = req.body
        const path = await guard.unitPath(req.params.id)
        if (!path) throw notFound('unit', req.params.id)
        if (!(await guard.user(req.principal, userId))) throw missingRef('userId')
        const role = await conflicts.roleOf(userId)
        if (role === null) throw missingRef('userId')
        if (role !== 'inspector') throw new FirewatchError('FW_ERR_VALIDATION', `user ${userId} is not an inspector`, { statusCode: 400, field: 'userId' })
        const created = await audit.transaction(async (c) => {
          const made = await conflicts.add(req.params.id, userId, reason, req.principal.name, c)
          if (made) {
            const entry = { subjectKind: 'unit', subjectId: req.params.id, jurisdictionId: path.at(-1)!, detail: { userId, reason } }
            await audit.record({ actor: req.principal.name, action: 'conflict.recorded', ...entry }, c)
          }
          return made
        })
        if (!created) throw new FirewatchError('FW_ERR_CONFLICT', `a conflict of ${userId} with unit ${req.params.id} is already recorded`, { statusCode: 409 })
        return reply.status(201).send(created)
      }
    )

    app.get(
      '/units/:id/conflicts',
      { config: { scope: 'unit' }, schema: { tags, description: 'Conflicts recorded against the unit.', params: IdParams, response: { 200: List(Conflict), ...errors } } },
      async (req) => {
        if (!(await guard.unitPath(req.params.id))) throw notFound('unit', req.params.id)
        const items = await conflicts.list(req.params.id)
        return { items, total: items.length }
      }
    )

    app.delete(
      '/units/:id/conflicts/:userId',
      {
        config: { scope: 'unit', action: 'conflicts.manage' },
        schema: { tags, description: 'Remove a recorded conflict. Administrators.', params: ConflictParams, response: { 204: { type: 'null' }, ...errors } }
      },
      async (req, reply) => {
        const { id, userId } = req.params
        const removed = await audit.transaction(async (c) => {
          if (!(await conflicts.remove(id, userId, c))) return false
          const jurisdictionId = (await guard.unitPath(id))!.at(-1)!
          await audit.record({ actor: req.principal.name, action: 'conflict.removed', subjectKind: 'unit', subjectId: id, jurisdictionId, detail: { userId } }, c)
          return true
        })
        if (!removed) throw notFound('conflict', `${req.params.userId} with unit ${req.params.id}`)
        return reply.status(204).send()
      }
    )
  }
