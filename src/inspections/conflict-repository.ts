/**
 * Conflicts of interest (回避): an inspector recorded against a unit is never drawn to inspect it. Kept per unit; the
 * draw reads them when it lists a target's eligible inspectors (draw-repository.ts).
 */
import type pg from 'pg'
import type { Pool } from '../store/postgres.js'
import type { Conflict } from '../../schemas/inspections.js'

type Db = Pick<pg.PoolClient, 'query'>
type Row = { unit_id: string; user_id: string; reason: string; created_by: string; created_at: Date }
const conflictOf = (r: Row): Conflict => ({ unitId: r.unit_id, userId: r.user_id, reason: r.reason, createdBy: r.created_by, createdAt: r.created_at.toISOString() })

export class ConflictRepository {
  constructor(private readonly pool: Pool) {}

  /** The user's role, or null when no such user exists. */
  async roleOf(userId: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ role: string }>('SELECT role FROM users WHERE id = $1', [userId])
    return rows[0]?.role ?? null
  }

  /** Records the conflict; one already recorded for the pair keeps its first reason and answers null. */
  async add(unitId: string, userId: string, reason: string, actor: string, db: Db = this.pool): Promise<Conflict | null> {
    const { rows } = await db.query<Row>(
      `INSERT INTO unit_conflicts (unit_id, user_id, reason, created_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (unit_id, user_id) DO NOTHING RETURNING *`,
      [unitId, userId, reason, actor]
    )
    return rows[0] ? conflictOf(rows[0]) : null
  }

  async list(unitId: string): Promise<Conflict[]> {
    const { rows } = await this.pool.query<Row>('SELECT * FROM unit_conflicts WHERE unit_id = $1 ORDER BY created_at, user_id', [unitId])
    return rows.map(conflictOf)
  }

  async remove(unitId: string, userId: string, db: Db = this.pool): Promise<boolean> {
    const { rowCount } = await db.query('DELETE FROM unit_conflicts WHERE unit_id = $1 AND user_id = $2', [unitId, userId])
    return (rowCount ?? 0) > 0
  }
}
