/**
 * Inspection draws and their inputs in PostgreSQL (migrations 050, 061): candidates, eligible inspectors, stored draws.
 * A draw's candidates are rows of their own (`inspection_draw_candidates`, by position): a view of the draw reads none,
 * a page reads a range of positions, the replay and the public list read them all.
 */
import type pg from 'pg'
import type { Pool } from '../store/postgres.js'
import type { RiskLevel } from '../../schemas/alerts.js'
import type { Draw, DrawCandidate, DrawSummary, DrawsQuery, DrawTarget, PublicDraw } from '../../schemas/inspections.js'
import { byId } from './sampler.js'

type Db = Pick<pg.PoolClient, 'query'>
type Row = Record<string, unknown>

export interface NewDraw {
  jurisdictionId: string
  seed: string
  seedGenerated: boolean
  algorithm: string
  targetsRequested: number
  inspectorsPerTarget: number
  note: string | null
  weights: Draw['weights']
  candidates: DrawCandidate[]
  targets: DrawTarget[]
  createdBy: string
}

const iso = (v: unknown) => (v === null || v === undefined ? null : (v as Date).toISOString())
const SUMMARY_COLUMNS = `id, jurisdiction_id, seed, seed_generated, algorithm, targets_requested, inspectors_per_target, note,
  created_by, created_at, published_at, published_by, candidate_count,
  jsonb_array_length(targets) AS target_count,
  (SELECT count(*)::int FROM jsonb_array_elements(targets) t WHERE (t->>'shortfall')::int > 0) AS shortfalls`

/** The columns every view of a draw has. */
const baseOf = (r: Row): Omit<DrawSummary, 'candidateCount' | 'targetCount'> => ({
  id: String(r.id),
  jurisdictionId: r.jurisdiction_id as string,
  seed: r.seed as string,
  seedGenerated: r.seed_generated as boolean,
  algorithm: r.algorithm as string,
  targetsRequested: r.targets_requested as number,
  inspectorsPerTarget: r.inspectors_per_target as number,
  note: r.note as string | null,
  shortfalls: r.shortfalls as number,
  createdBy: r.created_by as string,
  createdAt: iso(r.created_at)!,
  publishedAt: iso(r.published_at),
  publishedBy: r.published_by as string | null
})
const summaryOf = (r: Row): DrawSummary => ({ ...baseOf(r), candidateCount: r.candidate_count as number, targetCount: r.target_count as number })

const CANDIDATE_COLUMNS = 'position, unit_id, risk_level, dishonest, active_entries, weight'
const candidateOf = (r: Row): DrawCandidate => ({
  unitId: r.unit_id as string,
  riskLevel: r.risk_level as RiskLevel | null,
  dishonest: r.dishonest as boolean,
  activeEntries: r.active_entries as number,
  weight: r.weight as number
})

export class DrawRepository {
  constructor(private readonly pool: Pool) {}

  async jurisdictionExists(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM jurisdictions WHERE id = $1', [id])
    return (rowCount ?? 0) > 0
  }

  /** Every unit of the subtree with its current risk level (null: no score yet), by id. */
  async candidates(db: Db, jurisdictionId: string): Promise<{ unitId: string; level: RiskLevel | null }[]> {
    const { rows } = await db.query<{ id: string; level: RiskLevel | null }>(
      `SELECT u.id, r.level FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id LEFT JOIN unit_risk r ON r.unit_id = u.id
        WHERE $1 = ANY (j.ancestors)`,
      [jurisdictionId]
    )
    return rows.map((r) => ({ unitId: r.id, level: r.level })).sort((a, b) => byId(a.unitId, b.unitId))
  }

  /**
   * Per unit, the inspectors who may inspect it, by id: enabled users with role inspector whose jurisdiction subtree
   * holds the unit, less those with a conflict recorded against it.
   */
  async eligibleInspectors(db: Db, unitIds: string[]): Promise<Map<string, string[]>> {
    const { rows } = await db.query<{ unit_id: string; user_id: string }>(
      `SELECT u.id AS unit_id, us.id AS user_id
         FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id
         JOIN users us ON us.role = 'inspector' AND NOT us.disabled AND us.jurisdiction_id = ANY (j.ancestors)
        WHERE u.id = ANY ($1::text[])
          AND NOT EXISTS (SELECT 1 FROM unit_conflicts c WHERE c.unit_id = u.id AND c.user_id = us.id)`,
      [unitIds]
    )
    const out = new Map<string, string[]>()
    for (const r of rows) out.set(r.unit_id, [...(out.get(r.unit_id) ?? []), r.user_id])
    for (const list of out.values()) list.sort(byId)
    return out
  }

  /** The draw and its candidates, in the order used (their positions), in the caller's transaction. */
  async insert(db: Db, d: NewDraw): Promise<string> {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO inspection_draws (jurisdiction_id, seed, seed_generated, algorithm, targets_requested, inspectors_per_target, note,
         weights, candidate_count, targets, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
      [d.jurisdictionId, d.seed, d.seedGenerated, d.algorithm, d.targetsRequested, d.inspectorsPerTarget, d.note,
        JSON.stringify(d.weights), d.candidates.length, JSON.stringify(d.targets), d.createdBy]
    )
    const id = String(rows[0]!.id)
    // One statement for the whole list (50,000 rows at city scale), its order kept as positions.
    await db.query(
      `INSERT INTO inspection_draw_candidates (draw_id, ${CANDIDATE_COLUMNS})
       SELECT $1, e.ord - 1, e.c->>'unitId', e.c->>'riskLevel', (e.c->>'dishonest')::boolean, (e.c->>'activeEntries')::integer,
              (e.c->>'weight')::double precision
         FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(c, ord)`,
      [id, JSON.stringify(d.candidates)]
    )
    return id
  }

  /** The draw without its candidates (`candidateCount` says how many). */
  async get(id: string, db: Db = this.pool): Promise<Draw | null> {
    if (!/^[0-9]{1,18}$/.test(id)) return null
    const { rows } = await db.query(`SELECT ${SUMMARY_COLUMNS}, weights, targets FROM inspection_draws WHERE id = $1`, [id])
    const r = rows[0] as Row | undefined
    if (!r) return null
    return { ...baseOf(r), weights: r.weights as Draw['weights'], candidateCount: r.candidate_count as number, targets: r.targets as DrawTarget[] }
  }

  /** Every candidate of the draw, in the order used: what a replay runs on. */
  async allCandidates(drawId: string): Promise<DrawCandidate[]> {
    const { rows } = await this.pool.query(`SELECT ${CANDIDATE_COLUMNS} FROM inspection_draw_candidates WHERE draw_id = $1 ORDER BY position`, [drawId])
    return rows.map((r) => candidateOf(r as Row))
  }

  /**
   * Up to `limit` candidates after position `after` (-1: from the first), in the order used, and the position of the
   * last one when more follow (null: the list ends here).
   */
  async candidatePage(drawId: string, after: number, limit: number): Promise<{ items: DrawCandidate[]; next: number | null }> {
    const { rows } = await this.pool.query(
      `SELECT ${CANDIDATE_COLUMNS} FROM inspection_draw_candidates WHERE draw_id = $1 AND position > $2 ORDER BY position LIMIT $3`,
      [drawId, after, limit + 1]
    )
    const page = (rows as Row[]).slice(0, limit)
    return { items: page.map(candidateOf), next: rows.length > limit ? (page.at(-1)!.position as number) : null }
  }

  /** Newest first; `scope`: draws of jurisdictions in that subtree only (null: all). */
  async list(q: DrawsQuery, scope: string | null): Promise<{ items: DrawSummary[]; total: number }> {
    const where: string[] = []
    const args: unknown[] = []
    const inSubtree = (root: string) => {
      args.push(root)
      where.push(`jurisdiction_id IN (SELECT id FROM jurisdictions WHERE $${args.length} = ANY (ancestors))`)
    }
    if (scope !== null) inSubtree(scope)
    if (q.jurisdictionId) inSubtree(q.jurisdictionId)
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : ''
    const [{ rows }, count] = await Promise.all([
      this.pool.query(`SELECT ${SUMMARY_COLUMNS} FROM inspection_draws ${filter} ORDER BY id DESC LIMIT $${args.length + 1} OFFSET $${args.length + 2}`, [
        ...args,
        q.limit,
        q.offset
      ]),
      this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inspection_draws ${filter}`, args)
    ])
    const total = count.rows[0]!.n
    return { items: rows.map((r) => summaryOf(r as Row)), total }
  }

  /** Sets published_at once; false when it was already published (nothing changes then). */
  async publish(db: Db, id: string, actor: string): Promise<boolean> {
    const { rowCount } = await db.query('UPDATE inspection_draws SET published_at = now(), published_by = $2 WHERE id = $1 AND published_at IS NULL', [id, actor])
    return (rowCount ?? 0) > 0
  }

  /** What the public list names: units' names and addresses, inspectors' display names, the jurisdiction's name. */
  async names(draw: Draw, candidates: readonly DrawCandidate[]): Promise<Pick<PublicDraw, 'jurisdictionName'> & { units: Map<string, { name: string; address: string }>; users: Map<string, string> }> {
    const userIds = [...new Set(draw.targets.flatMap((t) => t.eligibleInspectors))]
    const [j, units, users] = await Promise.all([
      this.pool.query<{ name: string }>('SELECT name FROM jurisdictions WHERE id = $1', [draw.jurisdictionId]),
      this.pool.query<{ id: string; name: string; address: string }>('SELECT id, name, address FROM units WHERE id = ANY ($1::text[])', [candidates.map((c) => c.unitId)]),
      this.pool.query<{ id: string; display_name: string }>('SELECT id, display_name FROM users WHERE id = ANY ($1::text[])', [userIds])
    ])
    return {
      jurisdictionName: j.rows[0]?.name ?? draw.jurisdictionId,
      units: new Map(units.rows.map((u) => [u.id, { name: u.name, address: u.address }])),
      users: new Map(users.rows.map((u) => [u.id, u.display_name]))
    }
  }
}
