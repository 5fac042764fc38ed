/** The registry in PostgreSQL: jurisdictions, units, devices. */
import { randomUUID } from 'node:crypto'
import type { Pool } from './postgres.js'
import { FirewatchError } from '../errors.js'
import type { ModbusTarget } from '../ingest/modbus/device-poller.js'
import type { DeviceIdentity } from '../ingest/types.js'
import type {
  Device,
  DeviceCreate,
  Jurisdiction,
  JurisdictionCreate,
  Unit,
  UnitCreate
} from '../../schemas/api.js'

const PARENT_LEVEL = { city: null, district: 'city', street: 'district' } as const

export interface Paging {
  limit: number
  offset: number
}

export interface DeviceCredentials {
  id: string
  unitId: string
  profile: string
  protocol: string
  secretHash: string | null
}

type Row = Record<string, unknown>
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null)

const toJurisdiction = (r: Row): Jurisdiction => ({
  id: r.id as string,
  parentId: (r.parent_id as string | null) ?? null,
  name: r.name as string,
  level: r.level as Jurisdiction['level'],
  path: r.ancestors as string[],
  createdAt: iso(r.created_at)!
})

const toUnit = (r: Row): Unit => ({
  id: r.id as string,
  jurisdictionId: r.jurisdiction_id as string,
  name: r.name as string,
  address: r.address as string,
  category: r.category as Unit['category'],
  latitude: (r.latitude as number | null) ?? null,
  longitude: (r.longitude as number | null) ?? null,
  contactName: r.contact_name as string,
  contactPhone: r.contact_phone as string,
  createdAt: iso(r.created_at)!
})

const toDevice = (r: Row): Device => ({
  id: r.id as string,
  unitId: r.unit_id as string,
  name: r.name as string,
  kind: r.kind as Device['kind'],
  protocol: r.protocol as Device['protocol'],
  profile: r.profile as string,
  createdAt: iso(r.created_at)!,
  lastSeenAt: iso(r.last_seen_at),
  online: r.online as boolean,
  // Only a test mode still in force; an expired one reads as none.
  testModeUntil: r.test_mode_until instanceof Date && r.test_mode_until.getTime() > Date.now() ? r.test_mode_until.toISOString() : null,
  ...(r.modbus_host != null
    ? {
        modbus: {
          host: r.modbus_host as string,
          port: r.modbus_port as number,
          unitId: r.modbus_unit_id as number,
          pollIntervalMs: r.modbus_poll_interval_ms as number
        }
      }
    : {}),
  ...(r.gb26875_address != null ? { gb26875: { address: r.gb26875_address as string } } : {})
})

/** Turn constraint violations into API errors that name the field. */
function mapPgError(err: unknown, what: string, fields: Record<string, string> = {}): never {
  const e = err as { code?: string; constraint?: string }
  if (e.code === '23505' && e.constraint === 'devices_gb26875_address') {
    throw new FirewatchError('FW_ERR_CONFLICT', 'a device with this gb26875 address already exists', { statusCode: 409, field: 'gb26875.address' })
  }
  if (e.code === '23505') throw new FirewatchError('FW_ERR_CONFLICT', `${what} with this id already exists`, { statusCode: 409, field: 'id' })
  if (e.code === '23503') {
    const field = Object.entries(fields).find(([c]) => e.constraint?.includes(c))?.[1]
    throw new FirewatchError('FW_ERR_VALIDATION', `${field ?? 'a referenced record'} does not exist`, {
      statusCode: 400,
      ...(field ? { field } : {})
    })
  }
  throw err
}

/** A WHERE clause of the conditions whose value is given (`$` stands for it), after the paging parameters $1 and $2. */
function filters(page: Paging, conditions: [sql: string, value: string | null | undefined][]): { where: string; args: unknown[] } {
  const args: unknown[] = [page.limit, page.offset]
  const where: string[] = []
  for (const [sql, value] of conditions) {
    if (value === undefined || value === null) continue
    args.push(value)
    where.push(sql.replace('$', `$${args.length}`))
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', args }
}

/** The pool, or a client inside the caller's transaction (which then also records the action in the audit trail). */
type Db = { query: Pool['query'] }

export class RegistryRepository {
  constructor(private readonly pool: Pool) {}

  async createJurisdiction(body: JurisdictionCreate, db: Db = this.pool): Promise<Jurisdiction> {
    const id = body.id ?? randomUUID()
    const parentLevel = PARENT_LEVEL[body.level]
    let ancestors = [id]
    if (parentLevel === null) {
      if (body.parentId) throw new FirewatchError('FW_ERR_VALIDATION', 'a city has no parent', { statusCode: 400, field: 'parentId' })
    } else {
      if (!body.parentId) {
        throw new FirewatchError('FW_ERR_VALIDATION', `a ${body.level} needs the parentId of its ${parentLevel}`, {
          statusCode: 400,
          field: 'parentId'
        })
      }
      const parent = await this.getJurisdiction(body.parentId)
      if (!parent) throw new FirewatchError('FW_ERR_VALIDATION', 'parentId does not exist', { statusCode: 400, field: 'parentId' })
      if (parent.level !== parentLevel) {
        throw new FirewatchError('FW_ERR_VALIDATION', `the parent of a ${body.level} must be a ${parentLevel}, not a ${parent.level}`, {
          statusCode: 400,
          field: 'parentId'
        })
      }
      ancestors = [...parent.path, id]
    }
    try {
      const { rows } = await db.query(
        `INSERT INTO jurisdictions (id, parent_id, name, level, ancestors) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
        [id, body.parentId ?? null, body.name, body.level, ancestors]
      )
      return toJurisdiction(rows[0])
    } catch (err) {
      return mapPgError(err, 'a jurisdiction')
    }
  }

  async getJurisdiction(id: string): Promise<Jurisdiction | null> {
    const { rows } = await this.pool.query('SELECT * FROM jurisdictions WHERE id = $1', [id])
    return rows[0] ? toJurisdiction(rows[0]) : null
  }

  /**
   * With `within`, only that jurisdiction's subtree; with `scope` (a caller's jurisdiction; null: all), only that
   * subtree too. Both given: the intersection, so a `within` outside the scope lists nothing.
   */
  async listJurisdictions(page: Paging, within: string | undefined, scope: string | null): Promise<{ items: Jurisdiction[]; total: number }> {
    const { where, args } = filters(page, [
      ['$ = ANY (ancestors)', within],
      ['$ = ANY (ancestors)', scope]
    ])
    const { rows } = await this.pool.query(
      `SELECT *, count(*) OVER () AS total FROM jurisdictions ${where} ORDER BY array_length(ancestors, 1), name, id LIMIT $1 OFFSET $2`,
      args
    )
    return { items: rows.map(toJurisdiction), total: Number(rows[0]?.total ?? 0) }
  }

  async createUnit(body: UnitCreate, db: Db = this.pool): Promise<Unit> {
    try {
      const { rows } = await db.query(
        `INSERT INTO units (id, jurisdiction_id, name, address, category, latitude, longitude, contact_name, contact_phone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
        [
          body.id ?? randomUUID(),
          body.jurisdictionId,
          body.name,
          body.address,
          body.category,
          body.latitude ?? null,
          body.longitude ?? null,
          body.contactName,
          body.contactPhone
        ]
      )
      return toUnit(rows[0])
    } catch (err) {
      return mapPgError(err, 'a unit', { jurisdiction: 'jurisdictionId' })
    }
  }

  async getUnit(id: string): Promise<Unit | null> {
    const { rows } = await this.pool.query('SELECT * FROM units WHERE id = $1', [id])
    return rows[0] ? toUnit(rows[0]) : null
  }

  /** With `within`, only units in that jurisdiction's subtree; with `scope`, only units in that subtree too. */
  async listUnits(page: Paging, within: string | undefined, scope: string | null): Promise<{ items: Unit[]; total: number }> {
    const { where, args } = filters(page, [
      ['$ = ANY (j.ancestors)', within],
      ['$ = ANY (j.ancestors)', scope]
    ])
    const { rows } = await this.pool.query(
      `SELECT u.*, count(*) OVER () AS total FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id
       ${where} ORDER BY u.name, u.id LIMIT $1 OFFSET $2`,
      args
    )
    return { items: rows.map(toUnit), total: Number(rows[0]?.total ?? 0) }
  }

  async createDevice(body: DeviceCreate & { profile: string; protocol: string }, secretHash: string | null, db: Db = this.pool): Promise<Device> {
    try {
      const { rows } = await db.query(
        `INSERT INTO devices (id, unit_id, name, kind, protocol, profile, secret_hash,
                              modbus_host, modbus_port, modbus_unit_id, modbus_poll_interval_ms, gb26875_address)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *`,
        [
          body.id ?? randomUUID(),
          body.unitId,
          body.name ?? '',
          body.kind,
          body.protocol,
          body.profile,
          secretHash,
          body.modbus?.host ?? null,
          body.modbus?.port ?? null,
          body.modbus?.unitId ?? null,
          body.modbus?.pollIntervalMs ?? null,
          body.gb26875?.address.toLowerCase() ?? null
        ]
      )
      return toDevice(rows[0])
    } catch (err) {
      return mapPgError(err, 'a device', { unit: 'unitId' })
    }
  }

  async getDevice(id: string): Promise<Device | null> {
    const { rows } = await this.pool.query('SELECT * FROM devices WHERE id = $1', [id])
    return rows[0] ? toDevice(rows[0]) : null
  }

  /** With `unitId`, that unit's devices; with `scope`, only devices of units in that jurisdiction subtree. */
  async listDevices(page: Paging, unitId: string | undefined, scope: string | null): Promise<{ items: Device[]; total: number }> {
    const { where, args } = filters(page, [
      ['d.unit_id = $', unitId],
      ['d.unit_id IN (SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE $ = ANY (j.ancestors))', scope]
    ])
    const { rows } = await this.pool.query(`SELECT d.*, count(*) OVER () AS total FROM devices d ${where} ORDER BY d.id LIMIT $1 OFFSET $2`, args)
    return { items: rows.map(toDevice), total: Number(rows[0]?.total ?? 0) }
  }

  async getCredentials(id: string): Promise<DeviceCredentials | null> {
    const { rows } = await this.pool.query('SELECT id, unit_id, profile, protocol, secret_hash FROM devices WHERE id = $1', [id])
    const r = rows[0]
    return r ? { id: r.id, unitId: r.unit_id, profile: r.profile, protocol: r.protocol, secretHash: r.secret_hash } : null
  }

  /** Every device to poll over Modbus TCP, with where to poll it. */
  async listModbusTargets(): Promise<ModbusTarget[]> {
    const { rows } = await this.pool.query(
      `SELECT id, unit_id, profile, modbus_host, modbus_port, modbus_unit_id, modbus_poll_interval_ms
       FROM devices WHERE protocol = 'modbus' AND modbus_host IS NOT NULL`
    )
    return rows.map((r) => ({
      deviceId: r.id,
      unitId: r.unit_id,
      profile: r.profile,
      modbus: { host: r.modbus_host, port: r.modbus_port, unitId: r.modbus_unit_id, pollIntervalMs: r.modbus_poll_interval_ms }
    }))
  }

  /** The GB/T 26875.3 device with this source address (12 lowercase hex digits); null when none is registered. */
  async findGb26875Device(address: string): Promise<DeviceIdentity | null> {
    const { rows } = await this.pool.query(
      `SELECT id, unit_id, profile FROM devices WHERE gb26875_address = $1 AND protocol = 'gb26875'`,
      [address]
    )
    const r = rows[0]
    return r ? { deviceId: r.id, unitId: r.unit_id, profile: r.profile } : null
  }

  /** Put a device in test mode until a time, or take it out with null. False when there is no such device. */
  async setTestMode(deviceId: string, until: Date | null, db: Db = this.pool): Promise<boolean> {
    const { rowCount } = await db.query('UPDATE devices SET test_mode_until = $2 WHERE id = $1', [deviceId, until])
    return (rowCount ?? 0) > 0
  }

  /** Devices in test mode now: device id → end of test mode (epoch ms). */
  async testModes(): Promise<Map<string, number>> {
    const { rows } = await this.pool.query('SELECT id, test_mode_until FROM devices WHERE test_mode_until > now()')
    return new Map(rows.map((r) => [r.id as string, (r.test_mode_until as Date).getTime()]))
  }

  /** Record presence changes and last-seen times in one statement (called in batches by the presence tracker). */
  async recordPresence(updates: { id: string; lastSeen: Date; online: boolean | null }[]): Promise<void> {
    if (updates.length === 0) return
    await this.pool.query(
      `UPDATE devices d SET
         last_seen_at = GREATEST(d.last_seen_at, u.last_seen),
         online = COALESCE(u.online, d.online),
         online_changed_at = CASE WHEN u.online IS NOT NULL AND u.online IS DISTINCT FROM d.online THEN u.last_seen ELSE d.online_changed_at END
       FROM unnest($1::text[], $2::timestamptz[], $3::boolean[]) AS u(id, last_seen, online)
       WHERE d.id = u.id`,
      [updates.map((u) => u.id), updates.map((u) => u.lastSeen), updates.map((u) => u.online)]
    )
  }
}
