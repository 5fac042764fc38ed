/** The jurisdiction an audited subject belongs to, read in the action's transaction (scoped reads need it). */
import type { Queryable } from './audit-log.js'

const SQL = {
  unit: 'SELECT jurisdiction_id FROM units WHERE id = $1',
  device: 'SELECT u.jurisdiction_id FROM devices d JOIN units u ON u.id = d.unit_id WHERE d.id = $1'
} as const

/** Null for a subject that does not exist (nothing to scope by: only system-wide readers see the entry). */
export async function jurisdictionOf(db: Queryable, kind: keyof typeof SQL, id: string): Promise<string | null> {
  const { rows } = await db.query<{ jurisdiction_id: string }>(SQL[kind], [id])
  return rows[0]?.jurisdiction_id ?? null
}
