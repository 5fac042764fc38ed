/**
 * A unit's credit standing, read from its credit entries: the points of the entries not yet repaired, and whether
 * they reach the dishonest (失信) threshold in force (table credit_policy, written from rules/followup.yaml at start).
 * Every reader (case lists, draw weights, reports) goes through this function, so all apply the same rule.
 */
import type pg from 'pg'

export interface CreditStanding {
  dishonest: boolean
  /** Entries not repaired. */
  activeEntries: number
  /** Sum of the points of the entries not repaired. */
  points: number
}

export interface CreditReader {
  query: pg.Pool['query']
}

const STANDING_SQL = `
SELECT e.unit_id, count(*) FILTER (WHERE e.repaired_at IS NULL)::int AS active,
       coalesce(sum(e.points) FILTER (WHERE e.repaired_at IS NULL), 0)::int AS points,
       (SELECT dishonest_points FROM credit_policy) AS threshold
FROM credit_entries e
WHERE e.unit_id = ANY ($1::text[])
GROUP BY e.unit_id`

/**
 * The standing of each unit that has any credit entry (repaired ones included, with zero points);
 * units with no entry at all are absent from the map: clean.
 */
export async function creditStanding(db: CreditReader, unitIds: string[]): Promise<Map<string, CreditStanding>> {
  const standing = new Map<string, CreditStanding>()
  if (unitIds.length === 0) return standing
  const { rows } = await db.query<{ unit_id: string; active: number; points: number; threshold: number | null }>(
    STANDING_SQL,
    [unitIds]
  )
  for (const r of rows) {
    const dishonest = r.threshold !== null && r.points >= r.threshold
    standing.set(r.unit_id, { dishonest, activeEntries: r.active, points: r.points })
  }
  return standing
}
