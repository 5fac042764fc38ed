/**
 * Sampling weights of an inspection draw: the one table (docs/INSPECTIONS.md shows the same).
 *
 * The supervision reform keeps "double random, one public" (双随机、一公开) as the base and asks for key supervision of
 * units with prominent hazards or repeated violations: more frequent draws (STANDARDS.md, last section). Every unit of
 * the jurisdiction stays a candidate (a low-risk unit can still be drawn: the base stays random); a riskier unit, or one
 * with a credit record, is drawn proportionally more often. Each step up a risk level doubles the weight, so a critical
 * unit is drawn about eight times as often as a low one when one target is drawn.
 */
import type { RiskLevel } from '../../schemas/alerts.js'
import type { CreditStanding } from '../followup/credit.js'

/** The unit's current risk level (`unit_risk`, src/alerts/risk.ts); a unit without a score counts as low. */
export const RISK_WEIGHT: Readonly<Record<RiskLevel, number>> = { low: 1, medium: 2, high: 4, critical: 8 }

/**
 * Credit supervision (信用监管): a unit listed as dishonest (失信) doubles; one with active credit entries but not (yet)
 * dishonest weighs half as much again. Dyadic factors keep every weight exact in binary, so a replay by hand gets
 * the same numbers.
 */
export const CREDIT_FACTOR = { dishonest: 2, activeEntries: 1.5, clean: 1 } as const

/** The table as a draw stores it (`weights`), so a stored draw's weights can be checked against its own table. */
export interface WeightTable {
  risk: Readonly<Record<string, number>>
  credit: Readonly<Record<keyof typeof CREDIT_FACTOR, number>>
}
export const WEIGHT_TABLE: WeightTable = { risk: RISK_WEIGHT, credit: CREDIT_FACTOR }

export function weightOf(level: RiskLevel | null, credit: Pick<CreditStanding, 'dishonest' | 'activeEntries'> | undefined, table: WeightTable = WEIGHT_TABLE): number {
  const factor = !credit ? table.credit.clean : credit.dishonest ? table.credit.dishonest : credit.activeEntries > 0 ? table.credit.activeEntries : table.credit.clean
  return table.risk[level ?? 'low']! * factor
}
