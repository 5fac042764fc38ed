/** /healthz: the process answers. /readyz: Redis, PostgreSQL and InfluxDB answer too, with the ingest backlog. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

export interface HealthDeps {
  checks: Record<string, () => Promise<unknown>>
  /** The ingest backlog, counters and other numbers worth a glance. */
  status: () => Promise<Record<string, unknown>>
}

const Ready = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.String()])),
  status: Type.Record(Type.String(), Type.Unknown())
})

export const healthRoutes =
  ({ checks, status }: HealthDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get('/healthz', { logLevel: 'warn', schema: { tags: ['health'], security: [], response: { 200: Type.Object({ ok: Type.Boolean() }) } } }, async () => ({
      ok: true
    }))
    app.get('/readyz', { logLevel: 'warn', schema: { tags: ['health'], security: [], response: { 200: Ready, 503: Ready } } }, async (_req, reply) => {
      const results: Record<string, string> = {}
      await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), 2000)
            results[name] = 'ok'
          } catch (err) {
            results[name] = (err as Error).message || 'failed'
          }
        })
      )
      const ready = Object.values(results).every((v) => v === 'ok')
      const info = await status().catch(() => ({}))
      return reply.status(ready ? 200 : 503).send({ ready, checks: results, status: info })
    })
  }

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e))
    )
  })
}
