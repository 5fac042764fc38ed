/**
 * The HTTP API (fastify): registry, readings and events, health. Bodies and replies are validated from schemas/,
 * which @fastify/swagger also publishes as OpenAPI at /docs. Errors are `{ code, message, field? }`.
 */
import { timingSafeEqual, createHash } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import websocket from '@fastify/websocket'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from '../logger.js'
import { FirewatchError } from '../errors.js'
import { registryRoutes, type RegistryDeps } from './routes/registry.js'
import { telemetryRoutes, type TelemetryDeps } from './routes/telemetry.js'
import { healthRoutes, type HealthDeps } from './routes/health.js'
import { metricsRoutes, type MetricsDeps } from './routes/metrics.js'
import { alertRoutes, type AlertDeps } from './routes/alerts.js'
import { authRoutes, type AuthDeps } from './routes/auth.js'
import { can, type Action, type Principal } from '../auth/principal.js'
import { riskRoutes, type RiskDeps } from './routes/risk.js'
import { liveRoutes, type LiveDeps } from './routes/live.js'
import { riskRankingRoutes } from './routes/risk-ranking.js'
import { consoleRoutes } from './routes/console.js'
import { auditRoutes, type AuditDeps } from './routes/audit.js'
import { inspectionRoutes, type InspectionDeps } from './routes/inspections.js'
import { reportRoutes, type ReportDeps } from './routes/reports.js'
import { webhookRoutes, type WebhookDeps } from './routes/webhooks.js'
import type { ScopedKind } from '../auth/scope.js'
import { caseRoutes, type CaseDeps } from './routes/cases.js'
import { creditRoutes, type CreditDeps } from './routes/credit.js'

export interface ApiDeps extends RegistryDeps, TelemetryDeps, HealthDeps, MetricsDeps, AlertDeps, RiskDeps, AuthDeps, LiveDeps, AuditDeps, CaseDeps, CreditDeps, InspectionDeps, ReportDeps, WebhookDeps {
  adminToken: string
  log: Logger
}

export type Api = FastifyInstance

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `none`: no credentials (login, refresh); `bootstrap`: FIREWATCH_ADMIN_TOKEN only. Default: a user or API key. */
    auth?: 'none' | 'bootstrap'
    /** What the route does, checked against the caller's role. @defaultValue 'read' */
    action?: Action
    /**
     * The kind of record the route's `:id` path parameter names. A record outside the caller's jurisdiction subtree
     * answers the 404 of a missing one, and that is checked before the role: a caller whose role could not do this
     * to the record still gets 404 for one outside its scope, so a 403 never confirms that something exists.
     */
    scope?: ScopedKind
  }
  interface FastifyRequest {
    /** Who is calling (set by the /api/v1 hook on every route that needs credentials). */
    principal: Principal
  }
}

const BOOTSTRAP: Principal = { kind: 'bootstrap', id: 'bootstrap', name: 'bootstrap', role: 'admin', scope: null }

const digest = (s: string) => createHash('sha256').update(s).digest()

/** The live channel takes its credentials in the query (`?token=`): request logs show the URL without them. */
const redactUrl = (url: string) => url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]')
const requestSerializer = (req: { method?: string; url?: string; ip?: string; host?: string; socket?: { remotePort?: number } }) => ({
  method: req.method,
  url: req.url === undefined ? undefined : redactUrl(req.url),
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort
})

export async function buildApi(deps: ApiDeps): Promise<Api> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }, { serializers: { req: requestSerializer } }) as FastifyBaseLogger,
    bodyLimit: 256 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(swagger, {
    openapi: {
      info: { title: 'Firewatch API', version: '1', description: 'City-scale remote fire monitoring' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  // Before any route, so an upgrade to a route without a WebSocket handler is refused (the live channel: routes/live.ts).
  await app.register(websocket, {
    // Clients have nothing to send on the live channel.
    options: { maxPayload: 4096 },
    // A client that went away uncleanly (ECONNRESET) is not a server error.
    errorHandler: (err, socket, req) => {
      req.log.debug({ err }, 'WebSocket connection error')
      socket.terminate()
    }
  })

  app.setErrorHandler((err: FastifyError | FirewatchError, req, reply) => {
    if (err instanceof FirewatchError) {
      const status = err.details.statusCode ?? 500
      return reply.status(status).send({ code: err.code, message: err.message, ...(err.details.field ? { field: err.details.field } : {}) })
    }
    if (err.validation) {
      const v = err.validation[0]
      const missing = (v?.params as { missingProperty?: string } | undefined)?.missingProperty
      const extra = (v?.params as { additionalProperty?: string } | undefined)?.additionalProperty
      const path = (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.')
      const named = missing ?? extra
      // A nested field is named by its path ("modbus.unitId"), never by a bare name another field may share.
      const field = named ? (path ? `${path}.${named}` : named) : path || undefined
      const where = err.validationContext ?? 'body'
      const message = extra
        ? `${where}.${field} is not allowed`
        : missing
          ? `${where}.${field} is required`
          : `${where}${path ? '.' + path : ''} ${v?.message ?? 'is invalid'}`
      return reply.status(400).send({ code: 'FW_ERR_VALIDATION', message, ...(field ? { field } : {}) })
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ code: err.code ?? 'FW_ERR_VALIDATION', message: err.message })
    }
    req.log.error({ err }, 'request failed')
    return reply.status(503).send({ code: 'FW_ERR_UNAVAILABLE', message: 'a backing service failed; try again' })
  })
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ code: 'FW_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` })
  )

  await app.register(healthRoutes(deps))
  await app.register(metricsRoutes(deps))
  await app.register(consoleRoutes)
  // Every /api/v1 route is behind credentials: the hook belongs to the plugin holding the routes, so it guards them
  // whatever spelling of the URL reached them (a check on req.url could be dodged with /%61pi/…).
  const expected = digest(deps.adminToken)
  await app.register(
    async (v1) => {
      v1.decorateRequest('principal', null as unknown as Principal)
      v1.addHook('onRequest', async (req) => {
        const config = req.routeOptions.config
        if (config.auth === 'none') return
        const header = req.headers.authorization ?? ''
        const token = header.startsWith('Bearer ') ? header.slice(7).trim() : ''
        if (!token) throw new FirewatchError('FW_ERR_UNAUTHORIZED', 'a bearer token is required (log in at /api/v1/auth/login)', { statusCode: 401 })
        if (config.auth === 'bootstrap') {
          // Compare digests: constant time whatever the lengths.
          if (!timingSafeEqual(digest(token), expected)) {
            throw new FirewatchError('FW_ERR_UNAUTHORIZED', 'this route takes FIREWATCH_ADMIN_TOKEN', { statusCode: 401 })
          }
          req.principal = BOOTSTRAP
          return
        }
        req.principal = await deps.auth.principal(token)
        // Scope first (404, as if missing), then role (403): see `config.scope`.
        if (config.scope) await deps.guard.require(config.scope, req.principal, (req.params as { id?: string }).id ?? '')
        const action = config.action ?? 'read'
        if (!can(req.principal, action)) {
          req.log.info({ principal: req.principal.name, role: req.principal.role, action }, 'refused by role')
          throw new FirewatchError('FW_ERR_FORBIDDEN', `a ${req.principal.role} may not ${action.replace('.', ' ')}`, { statusCode: 403 })
        }
      })
      await v1.register(authRoutes(deps))
      await v1.register(registryRoutes(deps))
      await v1.register(telemetryRoutes(deps))
      await v1.register(alertRoutes(deps))
      await v1.register(riskRoutes(deps))
      await v1.register(riskRankingRoutes(deps))
      await v1.register(liveRoutes(deps))
      await v1.register(auditRoutes(deps))
      await v1.register(caseRoutes(deps))
      await v1.register(creditRoutes(deps))
      await v1.register(inspectionRoutes(deps))
      await v1.register(reportRoutes(deps))
      await v1.register(webhookRoutes(deps))
    },
    { prefix: '/api/v1' }
  )
  return app
}
