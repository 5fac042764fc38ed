/**
 * Devices for the benchmark, written straight into the registry of a running Firewatch (its PostgreSQL database,
 * through the app's RegistryRepository) rather than through the API: the API hashes each secret with scrypt
 * (tens of ms each), which is not what is measured here. Every device gets the same secret and one shared hash.
 */
import pg from 'pg'
import { RegistryRepository } from '../../src/store/registry-repository.js'
import { generateSecret, hashSecret } from '../../src/broker/secrets.js'
import type { DeviceCredentials } from './publishers.js'

export async function provisionDevices(
  databaseUrl: string,
  opts: {
    count: number
    prefix: string
    concurrency?: number
    /** Device kind and profile. @defaultValue 'sprinkler_pressure' */
    kind?: 'sprinkler_pressure' | 'alarm_panel'
    /** Devices per unit (a new unit for each group of this many, e.g. 1: a unit per panel). @defaultValue all in one */
    perUnit?: number
  }
): Promise<DeviceCredentials[]> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: opts.concurrency ?? 8 })
  try {
    const registry = new RegistryRepository(pool)
    const city = await registry.createJurisdiction({ id: `${opts.prefix}-city`, name: 'Bench City', level: 'city' })
    const perUnit = opts.perUnit ?? Math.max(1, opts.count)
    const units: string[] = []
    for (let u = 0; u * perUnit < opts.count; u++) {
      const unit = await registry.createUnit({
        id: units.length === 0 && perUnit >= opts.count ? `${opts.prefix}-unit` : `${opts.prefix}-unit-${String(u).padStart(4, '0')}`,
        jurisdictionId: city.id,
        name: 'Bench Tower',
        address: '1 Benchmark Road',
        category: 'key',
        contactName: 'Duty Manager',
        contactPhone: '0571-0000000'
      })
      units.push(unit.id)
    }
    const kind = opts.kind ?? 'sprinkler_pressure'
    const secret = generateSecret()
    const hash = await hashSecret(secret)
    const devices: DeviceCredentials[] = Array.from({ length: opts.count }, (_, i) => ({
      id: `${opts.prefix}-${String(i).padStart(5, '0')}`,
      secret
    }))
    let next = 0
    const worker = async () => {
      while (next < devices.length) {
        const i = next++
        const d = devices[i]!
        await registry.createDevice({ id: d.id, unitId: units[Math.floor(i / perUnit)]!, kind, profile: kind, protocol: 'mqtt' }, hash)
      }
    }
    await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker))
    return devices
  } finally {
    await pool.end()
  }
}
