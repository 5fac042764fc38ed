/** The live channel's route: WebSocket `/api/v1/live`, handed to the process's LiveHub (src/api/live/live-hub.ts). */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { LiveHub } from '../live/live-hub.js'

export interface LiveDeps {
  liveHub: LiveHub
}

function tokenOf(req: FastifyRequest): string | null {
  const q = (req.query ?? {}) as Record<string, unknown>
  if (typeof q.token === 'string' && q.token) return q.token
  const header = req.headers.authorization ?? ''
  const bearer = header.startsWith('Bearer ') ? header.slice(7).trim() : ''
  return bearer || null
}

export const liveRoutes =
  ({ liveHub }: LiveDeps): FastifyPluginAsync =>
  async (app) => {
    app.route({
      method: 'GET',
      url: '/live',
      // The credentials come in the query (browsers cannot set headers on a WebSocket): checked by the hub.
      config: { auth: 'none' },
      schema: { hide: true },
      handler: async (_req, reply) =>
        reply
          .status(426)
          .header('upgrade', 'websocket')
          .send({ code: 'FW_ERR_VALIDATION', message: 'the live channel is a WebSocket: connect with Upgrade: websocket' }),
      wsHandler: (socket, req) => {
        const q = (req.query ?? {}) as Record<string, unknown>
        liveHub.accept(socket, tokenOf(req), typeof q.lastEventId === 'string' ? q.lastEventId : null, req.log)
      }
    })
  }
