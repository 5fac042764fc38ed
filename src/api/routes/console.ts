/**
 * The web console (console/ of the installation) at /console/, and the chart library it uses from node_modules: every
 * file comes from this server, so the console works with no internet. A strict Content-Security-Policy allows only
 * this server's own scripts, styles and sockets (no inline script, nothing from elsewhere).
 */
import path from 'node:path'
import { createRequire } from 'node:module'
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'
import { projectRoot } from '../../config/index.js'

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // 'self' covers the live channel's ws:// (wss://) on this host and port.
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

export const CONSOLE_DIR = path.join(projectRoot, 'console')
const UPLOT_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist')

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  for (const url of ['/', '/console']) app.get(url, { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/'))
  await app.register(async (scope) => {
    scope.addHook('onSend', async (_req, reply) => {
      reply.header('content-security-policy', CSP)
      reply.header('x-content-type-options', 'nosniff')
      reply.header('referrer-policy', 'no-referrer')
    })
    await scope.register(fastifyStatic, { root: CONSOLE_DIR, prefix: '/console/', decorateReply: false, index: 'index.html', schemaHide: true })
    await scope.register(fastifyStatic, {
      root: UPLOT_DIR,
      prefix: '/console/vendor/uplot/',
      decorateReply: false,
      allowedPath: (p) => p === '/uPlot.esm.js' || p === '/uPlot.min.css',
      schemaHide: true
    })
  })
}
