/**
 * Jurisdiction scope: a principal bound to a jurisdiction sees that subtree only. Out-of-scope records answer 404,
 * exactly like records that do not exist, so a caller cannot even learn that they exist.
 *
 * Each check answers "not excluded by the caller's scope": false for a record outside it or missing, and true at once,
 * without reading anything, for a principal with `scope: null`; whether the record exists is then the route's business.
 */
import type { Pool } from '../store/postgres.js'
import { FirewatchError } from '../errors.js'
import type { Principal } from './principal.js'

export const notFound = (what: string, id: string) => new FirewatchError('FW_ERR_NOT_FOUND', `${what} ${id} does not exist`, { statusCode: 404 })

/** Kinds of record a route can name in its `:id` path parameter (see `config.scope` of the API routes). */
export type ScopedKind = 'jurisdiction' | 'unit' | 'device' | 'alert' | 'user' | 'apiKey' | 'case'
const LABEL: Record<ScopedKind, string> = { jurisdiction: 'jurisdiction', unit: 'unit', device: 'device', alert: 'alert', user: 'user', apiKey: 'API key', case: 'case' }

export class ScopeGuard {
  /** unit id → jurisdiction ancestors, for the live channel's filter. Units never move, so entries stay valid. */
  private readonly unitPaths = new Map<string, string[]>()

  constructor(private readonly pool: Pool) {}

  async jurisdiction(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    const { rows } = await this.pool.query('SELECT 1 FROM jurisdictions WHERE id = $1 AND $2 = ANY (ancestors)', [id, p.scope])
    return rows.length > 0
  }

  async unit(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    const path = await this.unitPath(id)
    return !!path && path.includes(p.scope)
  }

  async device(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    const { rows } = await this.pool.query<{ unit_id: string }>('SELECT unit_id FROM devices WHERE id = $1', [id])
    if (!rows[0]) return false
    return this.unit(p, rows[0].unit_id)
  }

  async alert(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    if (!/^[0-9]{1,18}$/.test(id)) return false
    const { rows } = await this.pool.query<{ unit_id: string }>('SELECT unit_id FROM alerts WHERE id = $1', [id])
    if (!rows[0]) return false
    return this.unit(p, rows[0].unit_id)
  }

  /** A follow-up case, scoped through its unit. */
  async case(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    if (!/^[0-9]{1,18}$/.test(id)) return false
    const { rows } = await this.pool.query<{ unit_id: string }>('SELECT unit_id FROM cases WHERE id = $1', [id])
    if (!rows[0]) return false
    return this.unit(p, rows[0].unit_id)
  }

  /** A user bound to the caller's subtree (one bound to no jurisdiction is visible to system administrators only). */
  async user(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    const { rows } = await this.pool.query(
      'SELECT 1 FROM users u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.id = $1 AND $2 = ANY (j.ancestors)',
      [id, p.scope]
    )
    return rows.length > 0
  }

  /** An API key bound to the caller's subtree, as for users. */
  async apiKey(p: Principal, id: string): Promise<boolean> {
    if (p.scope === null) return true
    const { rows } = await this.pool.query(
      'SELECT 1 FROM api_keys k JOIN jurisdictions j ON j.id = k.jurisdiction_id WHERE k.id = $1 AND $2 = ANY (j.ancestors)',
      [id, p.scope]
    )
    return rows.length > 0
  }

  /**
   * Throw the same 404 a missing record gets unless the record is in the caller's scope. With `scope: null` this
   * answers at once without reading anything: whether the record exists is then the route's own business.
   */
  async require(kind: ScopedKind, p: Principal, id: string): Promise<void> {
    if (!(await this[kind](p, id))) throw notFound(LABEL[kind], id)
  }

  /** The jurisdiction ids from the city down to a unit's jurisdiction; null for an unknown unit. */
  async unitPath(unitId: string): Promise<string[] | null> {
    const known = this.unitPaths.get(unitId)
    if (known) return known
    const { rows } = await this.pool.query<{ ancestors: string[] }>(
      'SELECT j.ancestors FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id WHERE u.id = $1',
      [unitId]
    )
    if (!rows[0]) return null
    if (this.unitPaths.size > 200_000) this.unitPaths.clear()
    this.unitPaths.set(unitId, rows[0].ancestors)
    return rows[0].ancestors
  }
}
