/** Alerts: list, read with history, acknowledge, confirm, resolve, isolation owner and expiry; device test mode. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AlertService } from '../../alerts/alert-service.js'
import type { RegistryRepository } from '../../store/registry-repository.js'

export interface AlertDeps {
  alerts: AlertService
  registry: RegistryRepository
}

export const alertRoutes =
  (_deps: AlertDeps): FastifyPluginAsyncTypebox =>
  async () => {}
