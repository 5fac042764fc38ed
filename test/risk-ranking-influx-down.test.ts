/**
 * The risk ranking with InfluxDB not answering (it may be down: readings wait in the ingest log): units never scored
 * are scored on demand, and each score reads InfluxDB, but the ranking must still answer promptly, listing those
 * units, instead of waiting out every read's timeout (10 s, three units at a time).
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUnitAt, startTestApp, type TestApp } from './helpers/env.js'

let t: TestApp
let influx: Server
const sockets: Socket[] = []

beforeAll(async () => {
  // An InfluxDB that accepts connections and never answers.
  influx = createServer((s) => void sockets.push(s))
  await new Promise<void>((resolve) => influx.listen(0, '127.0.0.1', resolve))
  const port = (influx.address() as { port: number }).port
  t = await startTestApp(undefined, { INFLUX_URL: `http://127.0.0.1:${port}` })
}, 60_000)
afterAll(async () => {
  for (const s of sockets) s.destroy()
  influx?.close()
  await t?.dispose()
}, 60_000)

describe('risk ranking with InfluxDB not answering', () => {
  it('answers within a couple of seconds, listing every unit', async () => {
    const units = [await createUnitAt(t.api), await createUnitAt(t.api), await createUnitAt(t.api), await createUnitAt(t.api)]
    const started = Date.now()
    const r = await t.api<{ items: { unitId: string; score: number | null }[]; total: number }>('GET', '/api/v1/risk?limit=100')
    expect(Date.now() - started).toBeLessThan(2500)
    expect(r.status).toBe(200)
    expect(r.body.items.map((u) => u.unitId)).toEqual(expect.arrayContaining(units))
  }, 60_000)
})
