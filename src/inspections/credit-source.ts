/**
 * Where a draw gets units' credit standings: the one call site of the credit records (src/followup/credit.ts,
 * `creditStanding`). Until the follow-up module is part of this build every unit reads as clean (an empty map), so
 * draws weigh by risk level alone; the draw stores each candidate's standing, so what was used is always visible.
 */
import type pg from 'pg'
import type { CreditStanding } from './weights.js'

export async function creditStandings(_db: { query: pg.Pool['query'] }, _unitIds: string[]): Promise<Map<string, CreditStanding>> {
  return new Map()
}
