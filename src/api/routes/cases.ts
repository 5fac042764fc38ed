/**
 * Follow-up cases: list, read with transitions, linked alerts and evidence, open by hand, and the lifecycle steps.
 * Scoped through the case's unit; inspectors and administrators act on cases, operators (and they) may record a
 * unit's rectification report (`submit`), viewers read.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { CaseService } from '../../followup/case-service.js'
import type { ScopeGuard } from '../../auth/scope.js'
import { FirewatchError } from '../../errors.js'
import { ErrorReply, List } from '../../../schemas/api.js'
import { Case, CaseAssignBody, CaseCreate, CaseDetail, CasesQuery, CaseStepBody, CaseStepReply, type Case as CaseT, type Evidence } from '../../../schemas/cases.js'

export interface CaseDeps {
  cases: CaseService
  guard: ScopeGuard
}

const CaseParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'numeric case id' }) })
const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }
const tags = ['cases']
const ACT = { action: 'case.act', scope: 'case' } as const
const STEP_NOTE =
  'Recorded in the case transitions (and the audit trail) with the caller as actor, the comment and the attachment references. ' +
  "Inspectors and administrators; a case outside the caller's jurisdiction answers 404, whatever the role. 409 when the case's status does not allow the step."

const notFound = (id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `case ${id} does not exist`, { statusCode: 404 })

/** A step's reply: the case, whether its evidence was all ok, and a warning when it was not. */
function stepReply(k: CaseT, evidence: Evidence[] = k.evidence) {
  const failing = evidence.filter((e) => !e.ok)
  return {
    ...k,
    evidenceOk: failing.length === 0,
    ...(failing.length ? { warning: `evidence not all ok: ${failing.map((e) => `${e.check} (${e.detail})`).join('; ')}` } : {})
  }
}

export const caseRoutes =
  ({ cases, guard }: CaseDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    const emptyBody = async (req: FastifyRequest) => {
      if (req.body === undefined) req.body = {}
    }
    const step = (req: { principal: { name: string }; body: CaseStepBody }) => ({ actor: req.principal.name, comment: req.body.comment ?? null, attachments: req.body.attachments ?? [] })

    app.get(
      '/cases',
      {
        schema: {
          tags,
          description: "Cases of units in the caller's jurisdiction subtree, newest first. `overdue=true`: cases that went overdue (also once rectified or closed).",
          querystring: CasesQuery,
          response: { 200: List(Case), ...errors }
        }
      },
      async (req) => cases.repo.list(req.query, req.principal.scope)
    )

    app.get(
      '/cases/:id',
      {
        config: { scope: 'case' },
        schema: {
          tags,
          description:
            'The case with every transition (oldest first), its linked alerts and the rectification evidence. When an inspector or administrator opens a case still being followed up, the evidence is computed afresh from the devices.',
          params: CaseParams,
          response: { 200: CaseDetail, ...errors }
        }
      },
      async (req) => {
        let k = await cases.repo.get(req.params.id)
        if (!k) throw notFound(req.params.id)
        if (req.principal.role === 'inspector' || req.principal.role === 'admin') k = await cases.refreshEvidence(k)
        return { ...k, transitions: await cases.repo.transitions(k.id), alerts: await cases.repo.alerts(k.id) }
      }
    )

    app.post(
      '/cases',
      {
        config: { action: 'case.act' },
        schema: {
          tags,
          description: `Open a case by hand (an inspector's finding). Assigned at once to the nearest inspector covering the unit, if any. A unit outside the caller's subtree is 400 "does not exist". ${STEP_NOTE}`,
          body: CaseCreate,
          response: { 201: Case, ...errors }
        }
      },
      async (req, reply) => {
        const b = req.body
        if (!(await guard.unit(req.principal, b.unitId)) || !(await cases.repo.pool.query('SELECT 1 FROM units WHERE id = $1', [b.unitId])).rowCount) {
          throw new FirewatchError('FW_ERR_VALIDATION', `unit ${b.unitId} does not exist`, { statusCode: 400, field: 'unitId' })
        }
        const deadline = b.deadline ? new Date(b.deadline) : new Date(Date.now() + cases.policy.defaultDeadlineMs)
        if (!(deadline.getTime() > Date.now())) throw new FirewatchError('FW_ERR_VALIDATION', 'deadline must be in the future', { statusCode: 400, field: 'deadline' })
        const alertIds = b.alertIds ?? []
        if (alertIds.length) {
          const { rows } = await cases.repo.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM alerts WHERE id = ANY ($1::bigint[]) AND unit_id = $2', [alertIds, b.unitId])
          if (rows[0]!.n !== new Set(alertIds).size) throw new FirewatchError('FW_ERR_VALIDATION', `alertIds must name alerts of unit ${b.unitId}`, { statusCode: 400, field: 'alertIds' })
        }
        const { case: k } = await cases.open({ unitId: b.unitId, policy: null, severity: b.severity, title: b.title, description: b.description, deadline, alertIds, ...step(req) })
        return reply.status(201).send(k)
      }
    )

    app.post(
      '/cases/:id/assign',
      {
        config: ACT,
        schema: { tags, description: `Assign (or reassign) the case to an active inspector whose jurisdiction covers the unit (otherwise 400, field assignee). ${STEP_NOTE}`, params: CaseParams, body: CaseAssignBody, response: { 200: CaseStepReply, ...errors } }
      },
      async (req) => stepReply(await cases.assign(req.params.id, req.body.assignee, step(req)))
    )

    app.post(
      '/cases/:id/submit',
      {
        config: { action: 'case.submit', scope: 'case' },
        preValidation: emptyBody,
        schema: {
          tags,
          description: `Record the unit's rectification report (open, assigned or overdue → rectification_submitted); the evidence from the devices is computed and kept with it. Operators may record it too: units have no accounts yet. ${STEP_NOTE}`,
          params: CaseParams,
          body: CaseStepBody,
          response: { 200: CaseStepReply, ...errors }
        }
      },
      async (req) => {
        const r = await cases.submit(req.params.id, step(req))
        return stepReply(r.case, r.evidence)
      }
    )

    app.post(
      '/cases/:id/verify',
      {
        config: ACT,
        preValidation: emptyBody,
        schema: {
          tags,
          description: `The inspector accepts the rectification (rectification_submitted → verified). The evidence is computed again and recorded with the step; the inspector decides, and the reply says when the evidence was not all ok. ${STEP_NOTE}`,
          params: CaseParams,
          body: CaseStepBody,
          response: { 200: CaseStepReply, ...errors }
        }
      },
      async (req) => {
        const r = await cases.verify(req.params.id, step(req))
        return stepReply(r.case, r.evidence)
      }
    )

    app.post(
      '/cases/:id/reject',
      {
        config: ACT,
        preValidation: emptyBody,
        schema: {
          tags,
          description: `The inspector refuses the rectification: back to assigned (overdue once past the deadline). A refused rectification adds a credit entry to the unit. ${STEP_NOTE}`,
          params: CaseParams,
          body: CaseStepBody,
          response: { 200: CaseStepReply, ...errors }
        }
      },
      async (req) => stepReply(await cases.reject(req.params.id, step(req)))
    )

    app.post(
      '/cases/:id/close',
      {
        config: ACT,
        preValidation: emptyBody,
        schema: { tags, description: `Close a verified case. ${STEP_NOTE}`, params: CaseParams, body: CaseStepBody, response: { 200: CaseStepReply, ...errors } }
      },
      async (req) => stepReply(await cases.close(req.params.id, step(req)))
    )
  }
