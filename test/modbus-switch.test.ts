/** MODBUS_POLLING=false: the instance registers Modbus devices but leaves the polling to another instance. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './helpers/env.js'

let t: TestApp
beforeAll(async () => {
  t = await startTestApp(undefined, { MODBUS_POLLING: 'false', MODBUS_RELOAD_MS: '100' })
})
afterAll(async () => {
  await t?.dispose()
})

describe('an instance with Modbus polling off', () => {
  it('accepts a Modbus device and does not poll it', async () => {
    const unitId = (await t.provision('water_level')).unitId
    const r = await t.api('POST', '/api/v1/devices', {
      unitId,
      kind: 'water_level',
      protocol: 'modbus',
      modbus: { host: '127.0.0.1', port: 1502, unitId: 1, pollIntervalMs: 1000 }
    })
    expect(r.status).toBe(201)
    await new Promise((resolve) => setTimeout(resolve, 500)) // five reload periods
    expect(t.app.modbus.stats()).toMatchObject({ targets: 0, gateways: 0 })
  })
})
