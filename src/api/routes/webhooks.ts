/**
 * Webhook subscriptions and their dead letters (administrators, within their jurisdiction subtree;
 * docs/NOTIFICATIONS.md). As everywhere, a webhook outside the caller's subtree reads as missing (404) whatever the
 * role, checked before the role (403); one bound to no jurisdiction belongs to administrators of the whole system.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { ErrorReply, List, Page } from '../../../schemas/api.js'
import { DeadLetter, DeadLettersQuery, Webhook, WebhookCreate, WebhookCreated, WebhookPatch } from '../../../schemas/webhooks.js'
import { can, type Principal } from '../../auth/principal.js'
import { notFound, type ScopeGuard } from '../../auth/scope.js'
import { FirewatchError } from '../../errors.js'
import type { Notifications } from '../../notifications/index.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { newSecret } from '../../notifications/signature.js'

export interface WebhookDeps {
  notifications: Notifications
  guard: ScopeGuard
  audit: AuditLog
}

/** What the audit trail keeps of a webhook: never the secret, and of the URL only the host (URLs may carry tokens). */
const auditDetail = (w: Webhook) => ({ name: w.name, host: new URL(w.url).host, classes: w.classes, enabled: w.enabled })

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }
const tags = ['webhooks']
const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'numeric id' }) })
const RetryReply = Type.Object({ deliveryId: Type.String(), webhookId: Type.String() })

export const webhookRoutes =
  ({ notifications, guard, audit }: WebhookDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    const repo = notifications.repo
    const inScope = async (p: Principal, jurisdictionId: string | null) =>
      p.scope === null || (jurisdictionId !== null && (await guard.jurisdiction(p, jurisdictionId)))
    const role = (p: Principal) => {
      if (!can(p, 'webhooks.manage')) throw new FirewatchError('FW_ERR_FORBIDDEN', `a ${p.role} may not manage webhooks`, { statusCode: 403 })
    }
    // Before the body is validated: scope (404), then role (403), so neither a 400 nor a 403 tells what exists.
    const guarded = (kind?: 'webhook' | 'deadLetter') => async (req: FastifyRequest) => {
      if (kind) {
        const id = (req.params as { id: string }).id
        const jurisdictionId = await repo.jurisdictionOf(kind, id)
        if (jurisdictionId === undefined || !(await inScope(req.principal, jurisdictionId))) {
          throw notFound(kind === 'webhook' ? 'webhook' : 'dead letter', id)
        }
      }
      role(req.principal)
    }
    /** Where a webhook may be bound: inside the caller's subtree; to no jurisdiction only by a whole-system administrator. */
    const checkBinding = async (p: Principal, jurisdictionId: string | null) => {
      if (jurisdictionId === null) {
        if (p.scope !== null) throw new FirewatchError('FW_ERR_FORBIDDEN', 'only an administrator of the whole system can subscribe to every jurisdiction', { statusCode: 403 })
        return
      }
      const exists = p.scope === null ? await repo.jurisdictionExists(jurisdictionId) : await guard.jurisdiction(p, jurisdictionId)
      if (!exists) throw new FirewatchError('FW_ERR_VALIDATION', 'jurisdictionId does not exist', { statusCode: 400, field: 'jurisdictionId' })
    }

    app.post(
      '/webhooks',
      {
        preValidation: guarded(),
        schema: {
          tags,
          description: 'Subscribe a URL to the notifications of a jurisdiction subtree and alert classes. The reply holds the signing secret, once.',
          body: WebhookCreate,
          response: { 201: WebhookCreated, ...errors }
        }
      },
      async (req, reply) => {
        await checkBinding(req.principal, req.body.jurisdictionId)
        const secret = newSecret()
        const webhook = await audit.transaction(async (c) => {
          const w = await repo.create(req.body, secret, req.principal.name, c)
          await audit.record({ actor: req.principal.name, action: 'webhook.created', subjectKind: 'webhook', subjectId: w.id, jurisdictionId: w.jurisdictionId, detail: auditDetail(w) }, c)
          return w
        })
        req.log.info({ webhookId: webhook.id, jurisdictionId: webhook.jurisdictionId, classes: webhook.classes, by: req.principal.name }, 'webhook created')
        return reply.status(201).send({ ...webhook, secret })
      }
    )

    app.get(
      '/webhooks',
      { preValidation: guarded(), schema: { tags, description: "Webhooks of the caller's subtree.", querystring: Page, response: { 200: List(Webhook), ...errors } } },
      async (req) => repo.list(req.principal.scope, req.query)
    )

    app.get(
      '/webhooks/dead-letters',
      {
        preValidation: guarded(),
        schema: {
          tags,
          description: "Deliveries that exhausted their attempts, of the caller's webhooks, newest first.",
          querystring: DeadLettersQuery,
          response: { 200: List(DeadLetter), ...errors }
        }
      },
      async (req) => repo.deadLetters(req.principal.scope, req.query)
    )

    app.post(
      '/webhooks/dead-letters/:id/retry',
      {
        preValidation: guarded('deadLetter'),
        schema: {
          tags,
          description: 'Send a dead letter again, with the same delivery id and body, and the full attempt count; it leaves the list (and comes back if it fails again). 409 while its webhook is disabled.',
          params: Params,
          response: { 202: RetryReply, ...errors }
        }
      },
      async (req, reply) => {
        const dead = await repo.getDeadLetter(req.params.id)
        if (!dead) throw notFound('dead letter', req.params.id)
        // A disabled webhook drops its deliveries: sending one now would lose it instead of keeping it here.
        if (!(await repo.get(dead.webhookId))?.enabled) {
          throw new FirewatchError('FW_ERR_CONFLICT', `webhook ${dead.webhookId} is disabled; enable it first`, { statusCode: 409 })
        }
        // Taken off the list, sent, then committed: of retries racing, only the one that deleted it sends it; an
        // enqueue that fails rolls the delete back; and the attempt that fails again, waiting on the deleted row's
        // lock, lists it again after the commit instead of being deleted by it.
        await audit.transaction(async (c) => {
          if (!(await repo.deleteDeadLetter(dead.id, c))) throw notFound('dead letter', req.params.id)
          await notifications.delivery.enqueue(dead.webhookId, dead.deliveryId, dead.body, `${dead.id}-${Date.now()}`)
          const jurisdictionId = (await repo.jurisdictionOf('webhook', dead.webhookId)) ?? null
          const detail = { webhookId: dead.webhookId, deliveryId: dead.deliveryId }
          await audit.record({ actor: req.principal.name, action: 'webhook.dead_letter_retried', subjectKind: 'webhook', subjectId: dead.webhookId, jurisdictionId, detail }, c)
        })
        req.log.info({ deadLetterId: dead.id, deliveryId: dead.deliveryId, webhookId: dead.webhookId, by: req.principal.name }, 'dead letter sent again')
        return reply.status(202).send({ deliveryId: dead.deliveryId, webhookId: dead.webhookId })
      }
    )

    app.get(
      '/webhooks/:id',
      { preValidation: guarded('webhook'), schema: { tags, params: Params, response: { 200: Webhook, ...errors } } },
      async (req) => (await repo.get(req.params.id)) ?? Promise.reject(notFound('webhook', req.params.id))
    )

    app.patch(
      '/webhooks/:id',
      {
        preValidation: guarded('webhook'),
        schema: { tags, description: 'Change the name, URL, jurisdiction, classes or whether it is enabled (the secret stays).', params: Params, body: WebhookPatch, response: { 200: Webhook, ...errors } }
      },
      async (req) => {
        if (req.body.jurisdictionId !== undefined) await checkBinding(req.principal, req.body.jurisdictionId)
        const webhook = await audit.transaction(async (c) => {
          const w = await repo.update(req.params.id, req.body, c)
          if (!w) throw notFound('webhook', req.params.id)
          const detail = { changed: Object.keys(req.body).sort(), ...auditDetail(w) }
          await audit.record({ actor: req.principal.name, action: 'webhook.changed', subjectKind: 'webhook', subjectId: w.id, jurisdictionId: w.jurisdictionId, detail }, c)
          return w
        })
        req.log.info({ webhookId: webhook.id, changed: Object.keys(req.body), by: req.principal.name }, 'webhook changed')
        return webhook
      }
    )

    app.delete(
      '/webhooks/:id',
      { preValidation: guarded('webhook'), schema: { tags, description: 'Remove the webhook, its waiting deliveries and its dead letters.', params: Params, response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        await audit.transaction(async (c) => {
          const w = await repo.delete(req.params.id, c)
          if (!w) throw notFound('webhook', req.params.id)
          await audit.record({ actor: req.principal.name, action: 'webhook.deleted', subjectKind: 'webhook', subjectId: w.id, jurisdictionId: w.jurisdictionId, detail: auditDetail(w) }, c)
        })
        req.log.info({ webhookId: req.params.id, by: req.principal.name }, 'webhook deleted')
        return reply.status(204).send(null)
      }
    )
  }
