/**
 * Login and sessions, users and API keys.
 *
 * `POST /auth/bootstrap` is the only route FIREWATCH_ADMIN_TOKEN opens: it creates the first administrator (bound to
 * no jurisdiction: the whole system) while none exists. Everything else is done as a user or with an API key.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { Redis } from 'ioredis'
import rateLimit from '@fastify/rate-limit'
import { ErrorReply, IdParams, List, Page } from '../../../schemas/api.js'
import { ApiKey, ApiKeyCreate, ApiKeyCreated, BootstrapBody, LoginBody, Me, RefreshBody, SessionReply, User, UserCreate, UserPatch } from '../../../schemas/auth.js'
import type { AuthService } from '../../auth/auth-service.js'
import { mayGrant, type Principal, type Role } from '../../auth/principal.js'
import { notFound, type ScopeGuard } from '../../auth/scope.js'
import { FirewatchError } from '../../errors.js'
import type { AuditLog } from '../../audit/audit-log.js'

export interface AuthDeps {
  auth: AuthService
  guard: ScopeGuard
  /** Shared by every instance: login attempts are counted across them. */
  redis: Redis
  redisPrefix: string
  /** Users and API keys created, changed, revoked are recorded here, in the change's transaction. */
  audit: AuditLog
  /** Login attempts allowed per client address and username per minute. @defaultValue 10 */
  loginAttemptsPerMinute?: number
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply, 429: ErrorReply }
const tags = ['auth']
const forbidden = (message: string) => new FirewatchError('FW_ERR_FORBIDDEN', message, { statusCode: 403 })

/** A principal may give out access only within its own subtree and up to its own role. */
async function checkGrant(guard: ScopeGuard, p: Principal, role: Role, jurisdictionId: string | null): Promise<void> {
  if (!mayGrant(p, role)) throw forbidden(`a ${p.role} cannot grant the role ${role}`)
  if (jurisdictionId === null) {
    if (p.scope !== null) throw forbidden('only an administrator of the whole system can grant access to every jurisdiction')
    if (role !== 'admin') throw new FirewatchError('FW_ERR_VALIDATION', 'only administrators may be bound to no jurisdiction', { statusCode: 400, field: 'jurisdictionId' })
    return
  }
  // Out of scope reads as missing, as everywhere.
  if (!(await guard.jurisdiction(p, jurisdictionId))) {
    throw new FirewatchError('FW_ERR_VALIDATION', 'jurisdictionId does not exist', { statusCode: 400, field: 'jurisdictionId' })
  }
}

/** What a user entry records: who the account is and what it may do (never a password or its hash). */
const userDetail = (u: { username: string; displayName: string; role: string; jurisdictionId: string | null }) => ({
  username: u.username,
  displayName: u.displayName,
  role: u.role,
  jurisdictionId: u.jurisdictionId
})

export const authRoutes =
  ({ auth, guard, redis, redisPrefix, audit, loginAttemptsPerMinute }: AuthDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    await app.register(rateLimit, {
      global: false,
      redis,
      nameSpace: `${redisPrefix}ratelimit:`,
      // Redis away: let the login through rather than lock everyone out (the password hash is the real defence).
      skipOnError: true,
      errorResponseBuilder: (_req, ctx) =>
        new FirewatchError('FW_ERR_RATE_LIMITED', `too many login attempts; try again in ${Math.ceil(ctx.ttl / 1000)} s`, { statusCode: 429 })
    })

    app.post(
      '/auth/bootstrap',
      {
        config: { auth: 'bootstrap' },
        schema: {
          tags,
          description: 'Create the first administrator (every jurisdiction). Bearer FIREWATCH_ADMIN_TOKEN; refused once an administrator exists.',
          body: BootstrapBody,
          response: { 201: User, ...errors }
        }
      },
      async (req, reply) => {
        if (await auth.hasAdmin()) throw new FirewatchError('FW_ERR_CONFLICT', 'an administrator exists; log in as one to create users', { statusCode: 409 })
        const user = await audit.transaction(async (c) => {
          const u = await auth.createUser({ ...req.body, role: 'admin', jurisdictionId: null }, 'bootstrap', c)
          await audit.record({ actor: 'bootstrap', action: 'user.created', subjectKind: 'user', subjectId: u.id, jurisdictionId: null, detail: userDetail(u) }, c)
          return u
        })
        req.log.warn({ userId: user.id, username: user.username }, 'first administrator created with the bootstrap token')
        return reply.status(201).send(user)
      }
    )

    app.post(
      '/auth/login',
      {
        config: {
          auth: 'none',
          rateLimit: {
            // Counted once the body is parsed: the key names the username, which onRequest (the default) cannot see,
            // so every login from one address would share one budget.
            hook: 'preValidation',
            max: loginAttemptsPerMinute ?? 10,
            timeWindow: '1 minute',
            keyGenerator: (req) => `${req.ip}|${String((req.body as { username?: unknown } | undefined)?.username ?? '').slice(0, 64)}`
          }
        },
        schema: { tags, security: [], body: LoginBody, response: { 200: SessionReply, ...errors } }
      },
      async (req) => {
        const user = await auth.checkPassword(req.body.username, req.body.password)
        if (!user) {
          req.log.warn({ username: req.body.username, ip: req.ip }, 'login failed')
          throw new FirewatchError('FW_ERR_UNAUTHORIZED', 'wrong username or password', { statusCode: 401 })
        }
        req.log.info({ userId: user.id, username: user.username, ip: req.ip }, 'logged in')
        return auth.startSession(user)
      }
    )

    app.post(
      '/auth/refresh',
      { config: { auth: 'none' }, schema: { tags, security: [], body: RefreshBody, response: { 200: SessionReply, ...errors } } },
      async (req) => auth.refresh(req.body.refreshToken)
    )

    app.post(
      '/auth/logout',
      { config: { auth: 'none' }, schema: { tags, security: [], body: RefreshBody, response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        await auth.logout(req.body.refreshToken)
        return reply.status(204).send(null)
      }
    )

    app.get('/auth/me', { schema: { tags, response: { 200: Me, ...errors } } }, async (req) => {
      const p = req.principal
      const displayName = p.kind === 'user' ? ((await auth.getUser(p.id))?.displayName ?? p.name) : p.name
      return { kind: p.kind === 'api_key' ? 'api_key' : 'user', id: p.id, name: p.name, displayName, role: p.role, jurisdictionId: p.scope } as const
    })

    // --- users --------------------------------------------------------------------------------------------------
    app.post('/users', { config: { action: 'users.manage' }, schema: { tags, body: UserCreate, response: { 201: User, ...errors } } }, async (req, reply) => {
      // Names the history already uses for something else: the rule engine, the bootstrap token.
      if (['system', 'bootstrap'].includes(req.body.username.toLowerCase()) || req.body.username.startsWith('api-key:')) {
        throw new FirewatchError('FW_ERR_VALIDATION', `username ${req.body.username} is reserved`, { statusCode: 400, field: 'username' })
      }
      await checkGrant(guard, req.principal, req.body.role, req.body.jurisdictionId)
      const user = await audit.transaction(async (c) => {
        const u = await auth.createUser(req.body, req.principal.name, c)
        await audit.record({ actor: req.principal.name, action: 'user.created', subjectKind: 'user', subjectId: u.id, jurisdictionId: u.jurisdictionId, detail: userDetail(u) }, c)
        return u
      })
      req.log.info({ userId: user.id, username: user.username, role: user.role, jurisdictionId: user.jurisdictionId }, 'user created')
      return reply.status(201).send(user)
    })
    app.get('/users', { config: { action: 'users.manage' }, schema: { tags, querystring: Page, response: { 200: List(User), ...errors } } }, async (req) =>
      auth.listUsers(req.principal.scope, req.query)
    )
    const visibleUser = async (p: Principal, id: string) => {
      const user = await auth.getUser(id)
      if (!user) throw notFound('user', id)
      if (p.scope !== null && (user.jurisdictionId === null || !(await guard.jurisdiction(p, user.jurisdictionId)))) throw notFound('user', id)
      return user
    }
    app.get('/users/:id', { config: { action: 'users.manage', scope: 'user' }, schema: { tags, params: IdParams, response: { 200: User, ...errors } } }, async (req) =>
      visibleUser(req.principal, req.params.id)
    )
    app.patch(
      '/users/:id',
      { config: { action: 'users.manage', scope: 'user' }, schema: { tags, params: IdParams, body: UserPatch, response: { 200: User, ...errors } } },
      async (req) => {
        const user = await visibleUser(req.principal, req.params.id)
        if (req.body.role) await checkGrant(guard, req.principal, req.body.role, user.jurisdictionId)
        if (user.id === req.principal.id && (req.body.disabled || (req.body.role && req.body.role !== 'admin'))) {
          throw new FirewatchError('FW_ERR_CONFLICT', 'an administrator cannot disable or demote themselves', { statusCode: 409 })
        }
        const changed = Object.keys(req.body).filter((k) => k !== 'password').concat(req.body.password ? ['password'] : [])
        const updated = await audit.transaction(async (c) => {
          const u = await auth.updateUser(user.id, req.body, c)
          if (u && changed.length > 0) {
            // What changed, never the password itself.
            const detail = { changed, ...Object.fromEntries(Object.entries(req.body).filter(([k]) => k !== 'password')) }
            await audit.record({ actor: req.principal.name, action: 'user.changed', subjectKind: 'user', subjectId: u.id, jurisdictionId: u.jurisdictionId, detail }, c)
          }
          return u
        })
        req.log.info({ userId: user.id, changed }, 'user changed')
        return updated!
      }
    )

    // --- API keys -----------------------------------------------------------------------------------------------
    app.post(
      '/api-keys',
      { config: { action: 'users.manage' }, schema: { tags, body: ApiKeyCreate, response: { 201: ApiKeyCreated, ...errors } } },
      async (req, reply) => {
        await checkGrant(guard, req.principal, req.body.role, req.body.jurisdictionId)
        const created = await audit.transaction(async (c) => {
          const k = await auth.createApiKey(req.body, req.principal.name, c)
          const { id, name, role, jurisdictionId } = k.apiKey
          await audit.record({ actor: req.principal.name, action: 'api_key.created', subjectKind: 'api_key', subjectId: id, jurisdictionId, detail: { name, role } }, c)
          return k
        })
        req.log.info({ apiKeyId: created.apiKey.id, role: created.apiKey.role, jurisdictionId: created.apiKey.jurisdictionId }, 'API key created')
        return reply.status(201).send(created)
      }
    )
    app.get('/api-keys', { config: { action: 'users.manage' }, schema: { tags, response: { 200: Type.Object({ items: Type.Array(ApiKey) }), ...errors } } }, async (req) => ({
      items: await auth.listApiKeys(req.principal.scope)
    }))
    app.delete(
      '/api-keys/:id',
      { config: { action: 'users.manage', scope: 'apiKey' }, schema: { tags, params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        const key = await auth.getApiKey(req.params.id)
        const p = req.principal
        if (!key || (p.scope !== null && (key.jurisdictionId === null || !(await guard.jurisdiction(p, key.jurisdictionId))))) throw notFound('API key', req.params.id)
        await audit.transaction(async (c) => {
          // Revoking a revoked key changes nothing and is not recorded again.
          if (!(await auth.revokeApiKey(key.id, c))) return
          const detail = { name: key.name, role: key.role }
          await audit.record({ actor: p.name, action: 'api_key.revoked', subjectKind: 'api_key', subjectId: key.id, jurisdictionId: key.jurisdictionId, detail }, c)
        })
        req.log.info({ apiKeyId: key.id }, 'API key revoked')
        return reply.status(204).send(null)
      }
    )
  }
