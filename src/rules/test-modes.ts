/**
 * Device test mode (`PUT /api/v1/devices/{id}/test-mode`, docs/RULES.md): which devices are in it, read from
 * PostgreSQL every few seconds and at once when the API changes one. Such a device raises test alerts only, under a
 * rule id of their own (testRuleId), so a test never shares the open alert of a real one.
 */
import type { Pool } from '../store/postgres.js'

/** The rule id a device in test mode raises under. */
export const testRuleId = (ruleId: string) => `${ruleId}@test`

export class TestModes {
  private until = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private reads = 0

  constructor(
    private readonly pool: Pool,
    /** How often test modes are re-read. */
    private readonly refreshMs: number
  ) {}

  /** Re-read which devices are in test mode (the API calls this after a change). */
  async refresh(): Promise<void> {
    // Reads may overlap (the timer and the API): only the one started last may replace the map, or a read that
    // began before a change could put the old test modes back after a newer read applied the change.
    const mine = ++this.reads
    const { rows } = await this.pool.query<{ id: string; until: Date }>(
      'SELECT id, test_mode_until AS until FROM devices WHERE test_mode_until > now()'
    )
    if (mine === this.reads) this.until = new Map(rows.map((r) => [r.id, r.until.getTime()]))
  }

  /** Re-read them every refreshMs from now on (a failed read waits for the next). */
  startRefreshing(): void {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.refreshMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  has(deviceId: string): boolean {
    const until = this.until.get(deviceId)
    return until !== undefined && until > Date.now()
  }
}
