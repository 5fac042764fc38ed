/** Jurisdictions, units and devices. `POST /devices` returns the device secret, once. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import {
  Device,
  DeviceCreate,
  DeviceCreated,
  ErrorReply,
  Id,
  IdParams,
  Jurisdiction,
  JurisdictionCreate,
  List,
  Page,
  Unit,
  UnitCreate
} from '../../../schemas/api.js'
import type { RegistryRepository } from '../../store/registry-repository.js'
import type { ScopeGuard } from '../../auth/scope.js'
import type { ProfileMap } from '../../ingest/profiles.js'
import { generateSecret, hashSecret } from '../../broker/secrets.js'
import { FirewatchError } from '../../errors.js'
import type { AuditLog } from '../../audit/audit-log.js'
import { jurisdictionOf } from '../../audit/jurisdiction-of.js'

export interface RegistryDeps {
  registry: RegistryRepository
  guard: ScopeGuard
  profiles: ProfileMap
  /** Every creation is recorded here, in the creation's transaction. */
  audit: AuditLog
  /** Told after a device is created, so pollers pick it up at once. */
  onDevicesChanged?: () => void
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }
const notFound = (what: string, id: string) =>
  new FirewatchError('FW_ERR_NOT_FOUND', `${what} ${id} does not exist`, { statusCode: 404 })
/** A referenced record outside the caller's scope reads exactly as a missing one. */
const missingRef = (field: string) => new FirewatchError('FW_ERR_VALIDATION', `${field} does not exist`, { statusCode: 400, field })
const WRITE = { action: 'registry.write' } as const

export const registryRoutes =
  ({ registry, guard, profiles, audit, onDevicesChanged }: RegistryDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/jurisdictions',
      {
        config: WRITE,
        schema: {
          tags: ['registry'],
          description: 'Administrators: a district or street under a jurisdiction of their subtree; a city only with no jurisdiction bound (the whole system).',
          body: JurisdictionCreate,
          response: { 201: Jurisdiction, ...errors }
        }
      },
      async (req, reply) => {
        const p = req.principal
        if (p.scope !== null) {
          if (!req.body.parentId) {
            // A city has no parent: no subtree holds it.
            if (req.body.level === 'city') {
              throw new FirewatchError('FW_ERR_FORBIDDEN', 'only an administrator of the whole system can create a city', { statusCode: 403 })
            }
          } else if (!(await guard.jurisdiction(p, req.body.parentId))) {
            throw missingRef('parentId')
          }
        }
        const created = await audit.transaction(async (c) => {
          const j = await registry.createJurisdiction(req.body, c)
          const detail = { name: j.name, level: j.level, parentId: j.parentId }
          await audit.record({ actor: p.name, action: 'jurisdiction.created', subjectKind: 'jurisdiction', subjectId: j.id, jurisdictionId: j.id, detail }, c)
          return j
        })
        return reply.status(201).send(created)
      }
    )
    app.get(
      '/jurisdictions',
      {
        schema: {
          tags: ['registry'],
          description: "The caller's subtree; `within` narrows it (one outside the subtree, like one that does not exist, lists nothing).",
          querystring: Type.Composite([Page, Type.Object({ within: Type.Optional(Id) })]),
          response: { 200: List(Jurisdiction), ...errors }
        }
      },
      async (req) => registry.listJurisdictions(req.query, req.query.within, req.principal.scope)
    )
    app.get(
      '/jurisdictions/:id',
      { config: { scope: 'jurisdiction' }, schema: { tags: ['registry'], params: IdParams, response: { 200: Jurisdiction, ...errors } } },
      async (req) => (await registry.getJurisdiction(req.params.id)) ?? Promise.reject(notFound('jurisdiction', req.params.id))
    )

    app.post(
      '/units',
      {
        config: WRITE,
        schema: { tags: ['registry'], description: 'Administrators, in a jurisdiction of their subtree.', body: UnitCreate, response: { 201: Unit, ...errors } }
      },
      async (req, reply) => {
        if (!(await guard.jurisdiction(req.principal, req.body.jurisdictionId))) throw missingRef('jurisdictionId')
        const created = await audit.transaction(async (c) => {
          const u = await registry.createUnit(req.body, c)
          const detail = { name: u.name, category: u.category, address: u.address }
          await audit.record({ actor: req.principal.name, action: 'unit.created', subjectKind: 'unit', subjectId: u.id, jurisdictionId: u.jurisdictionId, detail }, c)
          return u
        })
        return reply.status(201).send(created)
      }
    )
    app.get(
      '/units',
      {
        schema: {
          tags: ['registry'],
          description: "Units in the caller's subtree; `jurisdictionId` narrows it to that jurisdiction's subtree (one outside the caller's lists nothing).",
          querystring: Type.Composite([Page, Type.Object({ jurisdictionId: Type.Optional(Id) })]),
          response: { 200: List(Unit), ...errors }
        }
      },
      async (req) => registry.listUnits(req.query, req.query.jurisdictionId, req.principal.scope)
    )
    app.get('/units/:id', { config: { scope: 'unit' }, schema: { tags: ['registry'], params: IdParams, response: { 200: Unit, ...errors } } }, async (req) => {
      return (await registry.getUnit(req.params.id)) ?? Promise.reject(notFound('unit', req.params.id))
    })

    app.post(
      '/devices',
      {
        config: WRITE,
        schema: { tags: ['registry'], description: 'Administrators, in a unit of their subtree.', body: DeviceCreate, response: { 201: DeviceCreated, ...errors } }
      },
      async (req, reply) => {
        const body = req.body
        if (!(await guard.unit(req.principal, body.unitId))) throw missingRef('unitId')
        const profileName = body.profile ?? body.kind
        const profile = profiles.get(profileName)
        if (!profile) {
          throw new FirewatchError('FW_ERR_VALIDATION', `no device profile ${profileName}; known: ${[...profiles.keys()].join(', ')}`, {
            statusCode: 400,
            field: 'profile'
          })
        }
        if (profile.kind !== body.kind) {
          throw new FirewatchError('FW_ERR_VALIDATION', `profile ${profileName} is for ${profile.kind} devices, not ${body.kind}`, {
            statusCode: 400,
            field: 'profile'
          })
        }
        const protocol = body.protocol ?? 'mqtt'
        if (!profile.protocols.includes(protocol)) {
          throw new FirewatchError('FW_ERR_VALIDATION', `profile ${profileName} supports ${profile.protocols.join(', ')}, not ${protocol}`, {
            statusCode: 400,
            field: 'protocol'
          })
        }
        if ((protocol === 'modbus') !== (body.modbus !== undefined)) {
          const message = protocol === 'modbus' ? 'a modbus device needs modbus: {host, port, unitId, pollIntervalMs}' : `modbus is only for protocol modbus, not ${protocol}`
          throw new FirewatchError('FW_ERR_VALIDATION', message, { statusCode: 400, field: 'modbus' })
        }
        if ((protocol === 'gb26875') !== (body.gb26875 !== undefined)) {
          const message = protocol === 'gb26875' ? 'a gb26875 device needs gb26875: {address}' : `gb26875 is only for protocol gb26875, not ${protocol}`
          throw new FirewatchError('FW_ERR_VALIDATION', message, { statusCode: 400, field: 'gb26875' })
        }
        if (protocol === 'modbus' && !profile.modbus) {
          throw new FirewatchError('FW_ERR_VALIDATION', `profile ${profileName} has no modbus register map`, { statusCode: 400, field: 'profile' })
        }
        const secret = protocol === 'mqtt' ? generateSecret() : null
        const secretHash = secret ? await hashSecret(secret) : null
        const device = await audit.transaction(async (c) => {
          const d = await registry.createDevice({ ...body, profile: profileName, protocol }, secretHash, c)
          // Never the secret, nor its hash.
          const detail = { unitId: d.unitId, kind: d.kind, protocol: d.protocol, profile: d.profile }
          const jurisdictionId = await jurisdictionOf(c, 'unit', d.unitId)
          await audit.record({ actor: req.principal.name, action: 'device.created', subjectKind: 'device', subjectId: d.id, jurisdictionId, detail }, c)
          return d
        })
        req.log.info({ deviceId: device.id, unitId: device.unitId, kind: device.kind }, 'device provisioned')
        if (protocol === 'modbus') onDevicesChanged?.()
        return reply.status(201).send({ ...device, secret })
      }
    )
    app.get(
      '/devices',
      {
        schema: {
          tags: ['registry'],
          description: "Devices of units in the caller's subtree; `unitId` narrows it to one unit (one outside the caller's lists nothing).",
          querystring: Type.Composite([Page, Type.Object({ unitId: Type.Optional(Id) })]),
          response: { 200: List(Device), ...errors }
        }
      },
      async (req) => registry.listDevices(req.query, req.query.unitId, req.principal.scope)
    )
    app.get('/devices/:id', { config: { scope: 'device' }, schema: { tags: ['registry'], params: IdParams, response: { 200: Device, ...errors } } }, async (req) => {
      return (await registry.getDevice(req.params.id)) ?? Promise.reject(notFound('device', req.params.id))
    })
  }
