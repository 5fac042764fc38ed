/**
 * Provisioning the simulated city through the API: jurisdictions, units, inspectors, MQTT devices, the UITDs over
 * GB/T 26875.3, and the Modbus devices.
 */
import { randomBytes } from 'node:crypto'
import { CITY, DISTRICTS, MANUAL_DEVICE, STREETS, UNITS, devicesOf, type DemoDevice } from '../demo-city.js'
import { GB26875_UITDS, type DemoUitd } from '../demo-gb26875.js'
import { MODBUS_DEVICES, MODBUS_GATEWAYS } from '../demo-modbus.js'
import type { Api } from './api.js'
import { DemoError } from './errors.js'
import { Progress } from './progress.js'

/** Run `fn` over `items`, `width` at a time. */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await fn(items[i]!)
      }
    })
  )
  return results
}

export interface Provisioned {
  simulated: (DemoDevice & { secret: string })[]
  manual: { id: string; secret: string }
  /** The UITDs over GB/T 26875.3: registered by address, no secret. */
  uitds: DemoUitd[]
}

export async function provision(api: Api): Promise<Provisioned> {
  const jurisdictions = [CITY, ...DISTRICTS, ...STREETS]
  let progress = new Progress('provisioning', 'jurisdictions', jurisdictions.length)
  // Parents first: one at a time.
  for (const j of jurisdictions) {
    await api.call('POST', '/api/v1/jurisdictions', j)
    progress.tick()
  }

  progress = new Progress('', 'units', UNITS.length)
  await pool(UNITS, 4, async (u) => {
    const body = {
      id: u.id,
      jurisdictionId: u.jurisdictionId,
      name: u.name,
      address: u.address,
      category: u.category,
      latitude: u.latitude,
      longitude: u.longitude,
      contactName: u.contactName,
      contactPhone: u.contactPhone
    }
    await api.call('POST', '/api/v1/units', body)
    progress.tick()
  })

  // Two inspectors per district, so follow-up cases are assigned and inspection draws have someone to send. They are
  // accounts for the demo's data, not for logging in: their passwords are random and not printed.
  progress = new Progress('', 'inspectors', DISTRICTS.length * 2)
  for (const d of DISTRICTS) {
    for (const n of [1, 2]) {
      const district = d.name.split(' ')
      const body = {
        username: `${d.id}-inspector-${n}`,
        displayName: `${district[0]}监督员${n} ${district.slice(1).join(' ')} inspector ${n}`,
        password: randomBytes(18).toString('base64url'),
        role: 'inspector',
        jurisdictionId: d.id
      }
      await api.call('POST', '/api/v1/users', body)
      progress.tick()
    }
  }

  const devices = UNITS.flatMap(devicesOf)
  progress = new Progress('', 'devices', devices.length + 1)
  const create = async (d: { id: string; unitId: string; kind: string; name: string }) => {
    const created = await api.call<{ secret: string | null }>('POST', '/api/v1/devices', { id: d.id, unitId: d.unitId, kind: d.kind, name: d.name })
    progress.tick()
    if (!created.secret) throw new DemoError(`POST /api/v1/devices gave ${d.id} no secret (is it an MQTT device?)`)
    return created.secret
  }
  // The server hashes each secret with scrypt: a few at a time keeps both cores busy without queueing.
  const secrets = await pool(devices, 4, create)
  const manualSecret = await create(MANUAL_DEVICE)

  progress = new Progress('', 'UITDs over GB/T 26875.3', GB26875_UITDS.length)
  for (const u of GB26875_UITDS) {
    await api.call('POST', '/api/v1/devices', {
      id: u.id,
      unitId: u.unitId,
      kind: 'uitd',
      name: u.name,
      protocol: 'gb26875',
      gb26875: { address: u.address }
    })
    progress.tick()
  }
  return {
    simulated: devices.map((d, i) => ({ ...d, secret: secrets[i]! })),
    manual: { id: MANUAL_DEVICE.id, secret: manualSecret },
    uitds: GB26875_UITDS
  }
}

/** Register the Modbus devices: the server starts polling each at once. */
export async function registerModbus(api: Api, host: string, ports: number[]): Promise<void> {
  const progress = new Progress('modbus', 'devices registered', MODBUS_DEVICES.length)
  for (const [i, g] of MODBUS_GATEWAYS.entries()) {
    for (const d of g.devices) {
      await api.call('POST', '/api/v1/devices', {
        id: d.id,
        unitId: d.unitId,
        kind: d.kind,
        name: d.name,
        protocol: 'modbus',
        modbus: { host, port: ports[i]!, unitId: d.slave, pollIntervalMs: d.pollIntervalMs }
      })
      progress.tick()
    }
  }
}
