/**
 * Alerts: list, read with history, acknowledge, confirm, resolve, isolation owner and expiry; device test mode.
 * Everything is limited to the caller's jurisdiction subtree; acting on alerts and test mode also needs the role.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { AlertService } from '../../alerts/alert-service.js'
import type { RegistryRepository } from '../../store/registry-repository.js'
import { FirewatchError } from '../../errors.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { jurisdictionOf } from '../../audit/jurisdiction-of.js'
import { ErrorReply, IdParams, List } from '../../../schemas/api.js'
import { AckBody, Alert, AlertsQuery, AlertWithHistory, IsolationBody, ResolveBody, TestModeBody } from '../../../schemas/alerts.js'

export interface AlertDeps {
  alerts: AlertService
  registry: RegistryRepository
  /** Test mode changes are recorded here (alert steps by the alert repository, in the alert's transaction). */
  audit: AuditLog
  /** Told after a device's test mode changed, so the rule engine applies it to the next message. */
  onTestModeChanged?: () => Promise<void>
}

const ACTOR_NOTE =
  'The transition is recorded with the caller as its actor: the username, or `api-key:{name}` for an API key. ' +
  'Operators and administrators; an alert outside the caller\'s jurisdiction answers 404, whatever the role.'

// Alert ids are numeric; any other string is an alert that does not exist (the repository answers 404), not a 400.
const AlertParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'numeric alert id' }) })

const TestModeReply = Type.Object({
  deviceId: Type.String(),
  testModeUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }
const ACT = { action: 'alert.act', scope: 'alert' } as const
const TEST = { action: 'device.test', scope: 'device' } as const
const tags = ['alerts']

const notFound = (what: string, id: string) =>
  new FirewatchError('FW_ERR_NOT_FOUND', `${what} ${id} does not exist`, { statusCode: 404 })

export const alertRoutes =
  ({ alerts, registry, audit, onTestModeChanged }: AlertDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/alerts',
      {
        schema: {
          tags,
          description: "Alerts of units in the caller's jurisdiction subtree (a `unitId` or `deviceId` outside it lists nothing), newest first within: unresolved before resolved, then fire, supervisory, trouble, the rest. `status=unresolved` is open or acknowledged.",
          querystring: AlertsQuery,
          response: { 200: List(Alert), ...errors }
        }
      },
      async (req) => alerts.list(req.query, req.principal.scope)
    )

    app.get(
      '/alerts/:id',
      { config: { scope: 'alert' }, schema: { tags, description: 'The alert and every transition, oldest first.', params: AlertParams, response: { 200: AlertWithHistory, ...errors } } },
      async (req) => {
        const alert = await alerts.get(req.params.id)
        if (!alert) throw notFound('alert', req.params.id)
        return { ...alert, transitions: await alerts.transitions(alert.id) }
      }
    )

    /** Set or end test mode and record it in one transaction; false for a device that does not exist. */
    const setTestMode = (req: FastifyRequest, deviceId: string, until: Date | null) =>
      audit.transaction(async (c) => {
        if (!(await registry.setTestMode(deviceId, until, c))) return false
        await audit.record(
          {
            actor: req.principal.name,
            action: until ? 'device.test_mode_started' : 'device.test_mode_ended',
            subjectKind: 'device',
            subjectId: deviceId,
            jurisdictionId: await jurisdictionOf(c, 'device', deviceId),
            detail: { until: until?.toISOString() ?? null }
          },
          c
        )
        return true
      })

    // Acknowledge and confirm take an optional comment: a request without a body is an empty one.
    const emptyBody = async (req: FastifyRequest) => {
      if (req.body === undefined) req.body = {}
    }

    app.post(
      '/alerts/:id/ack',
      {
        config: ACT,
        preValidation: emptyBody,
        schema: {
          tags,
          description: `An operator has seen the alert (open → acknowledged; acknowledging it again changes nothing). 409 once resolved. ${ACTOR_NOTE}`,
          params: AlertParams,
          body: AckBody,
          response: { 200: Alert, ...errors }
        }
      },
      async (req) => (await alerts.acknowledge(req.params.id, req.principal.name, req.body.comment ?? null)).alert
    )

    app.post(
      '/alerts/:id/confirm',
      {
        config: ACT,
        preValidation: emptyBody,
        schema: {
          tags,
          description: `An operator confirms a fire alert as a real fire (acknowledging it if open). 409 for other classes and for resolved alerts. ${ACTOR_NOTE}`,
          params: AlertParams,
          body: AckBody,
          response: { 200: Alert, ...errors }
        }
      },
      async (req) => (await alerts.confirm(req.params.id, req.principal.name, req.body.comment ?? null)).alert
    )

    app.post(
      '/alerts/:id/resolve',
      {
        config: ACT,
        schema: {
          tags,
          description: `Close the alert with a disposition; an open alert is acknowledged on the way (both recorded). 409 if already resolved. ${ACTOR_NOTE}`,
          params: AlertParams,
          body: ResolveBody,
          response: { 200: Alert, ...errors }
        }
      },
      async (req) => (await alerts.resolve(req.params.id, req.principal.name, req.body.disposition, req.body.comment ?? null)).alert
    )

    app.post(
      '/alerts/:id/isolation',
      {
        config: ACT,
        schema: {
          tags,
          description: `Owner and expiry of an isolation (屏蔽) alert; \`expiresAt\` must be in the future. 409 for other classes and for resolved alerts. ${ACTOR_NOTE}`,
          params: AlertParams,
          body: IsolationBody,
          response: { 200: Alert, ...errors }
        }
      },
      async (req) => {
        const expiresAt = new Date(req.body.expiresAt)
        if (!(expiresAt.getTime() > Date.now())) {
          throw new FirewatchError('FW_ERR_VALIDATION', 'expiresAt must be in the future', { statusCode: 400, field: 'expiresAt' })
        }
        return (await alerts.setIsolation(req.params.id, req.principal.name, req.body.owner, expiresAt, req.body.comment ?? null)).alert
      }
    )

    app.put(
      '/devices/:id/test-mode',
      {
        config: TEST,
        schema: {
          tags,
          description: 'Put a device in test mode for `minutes` from now (replacing any earlier end): it raises test alerts only, kept out of statistics. Operators and administrators.',
          params: IdParams,
          body: TestModeBody,
          response: { 200: TestModeReply, ...errors }
        }
      },
      async (req) => {
        const until = new Date(Date.now() + req.body.minutes * 60_000)
        if (!(await setTestMode(req, req.params.id, until))) throw notFound('device', req.params.id)
        await onTestModeChanged?.()
        req.log.info({ deviceId: req.params.id, until, by: req.principal.name }, 'device test mode set')
        return { deviceId: req.params.id, testModeUntil: until.toISOString() }
      }
    )

    app.delete(
      '/devices/:id/test-mode',
      {
        config: TEST,
        schema: {
          tags,
          description: 'End test mode now (nothing to do for a device not in test mode). Operators and administrators.',
          params: IdParams,
          response: { 200: TestModeReply, ...errors }
        }
      },
      async (req) => {
        if (!(await setTestMode(req, req.params.id, null))) throw notFound('device', req.params.id)
        await onTestModeChanged?.()
        req.log.info({ deviceId: req.params.id, by: req.principal.name }, 'device test mode cleared')
        return { deviceId: req.params.id, testModeUntil: null }
      }
    )
  }
