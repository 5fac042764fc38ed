/**
 * Fire alarm verification (docs/RULES.md, "correlation"): a single detector's fire alarm is raised as a pre-alarm
 * awaiting verification (`single_source`); a confirming signal in the same unit within the window (a `confirmBy`
 * rule, or a second detector) makes it `two_sources`, whether it comes before the alarm or after it.
 *
 * The windows live in memory: one engine instance, a window is minutes, and a fire alarm must not wait for a round
 * trip before its raise. The open single-source alerts are read back at start, so a confirmation after a restart
 * still upgrades; the signals seen before a restart are not.
 */
import type { AlertService } from '../alerts/alert-service.js'
import type { RaiseInput } from '../alerts/alert-repository.js'
import type { Alert } from '../../schemas/alerts.js'
import type { CorrelationSpec } from '../../schemas/rules.js'
import type { CompiledRule } from './rule-set.js'

const TWO_SOURCES = 'Fire confirmed by two sources'
const SINGLE_SOURCE = 'Fire alarm - single source, awaiting verification'

export class Correlation {
  /** Per unit: the correlation signals of the window (rule|device|point, when). */
  private readonly signals = new Map<string, { member: string; ts: number }[]>()
  /** Per unit: open single-source fire alerts a confirming signal would upgrade. */
  private readonly singles = new Map<string, Map<string, { member: string; firstSeen: number }>>()

  constructor(
    private readonly alerts: AlertService,
    private readonly spec: CorrelationSpec | null
  ) {}

  /** Whether the rule takes part: a fire alarm to verify, or a signal that confirms one. */
  covers(ruleId: string): boolean {
    const corr = this.spec
    return !!corr && (corr.verify.includes(ruleId) || corr.confirmBy.includes(ruleId))
  }

  /** Single-source fire alerts still within a correlation window, so a confirmation after a restart still upgrades. */
  async restore(): Promise<void> {
    const corr = this.spec
    if (!corr) return
    const { items } = await this.alerts.list({ status: 'unresolved', class: 'fire', from: new Date(Date.now() - corr.windowS * 1000).toISOString(), limit: 1000 })
    for (const a of items) if (a.verification === 'single_source') this.trackSingle(a)
  }

  /**
   * Raise the alert of a rule this covers: a fire alarm verified by what the unit's window holds, and any signal
   * upgrading the unit's open single-source alarms.
   */
  async raise(ctx: { unitId: string; deviceId: string }, rule: CompiledRule, point: string, input: RaiseInput): Promise<void> {
    const corr = this.spec!
    const member = `${rule.id}|${ctx.deviceId}|${point}`
    const now = Date.now()
    const windowMs = corr.windowS * 1000
    const recent = (this.signals.get(ctx.unitId) ?? []).filter((x) => x.ts >= now - windowMs)
    if (corr.verify.includes(rule.id)) {
      const other = recent.find((x) => {
        const r = x.member.slice(0, x.member.indexOf('|'))
        // A second detector confirms: another device, or another point of the same panel; the same one again does not.
        return corr.confirmBy.includes(r) || (corr.verify.includes(r) && x.member !== member)
      })
      input.verification = other ? 'two_sources' : 'single_source'
      input.title = other ? TWO_SOURCES : SINGLE_SOURCE
      input.detail = { ...input.detail, ...(other ? { confirmedBy: other.member } : {}), ...(rule.titleZh ? { titleZh: other ? '火警（双源确认）' : '火警（单一来源，待核实）' } : {}) }
    }
    recent.push({ member, ts: now })
    this.signals.set(ctx.unitId, recent)
    const result = await this.alerts.raise(input)
    if (result.alert.verification === 'single_source' && result.alert.status !== 'resolved') this.trackSingle(result.alert)
    await this.upgradeUnit(ctx.unitId, rule, member, now - windowMs)
  }

  /** Forget the units whose every signal is past the window (the periodic sweep calls this). */
  prune(): void {
    const windowMs = (this.spec?.windowS ?? 0) * 1000
    for (const [unit, list] of this.signals) if (list.every((x) => x.ts < Date.now() - windowMs)) this.signals.delete(unit)
  }

  /** A resolved or confirmed alert is no longer one a second source upgrades. */
  onAlertChange(alert: Alert, change: string): void {
    if (change === 'resolved' || change === 'confirmed' || change === 'upgraded') this.singles.get(alert.unitId)?.delete(alert.id)
  }

  private trackSingle(a: Alert): void {
    let m = this.singles.get(a.unitId)
    if (!m) this.singles.set(a.unitId, (m = new Map()))
    m.set(a.id, { member: `${a.ruleId}|${a.deviceId}|${a.point}`, firstSeen: Date.parse(a.firstSeen) })
  }

  /** A confirming signal: single-source fire alerts of the unit within the window become "confirmed by two sources". */
  private async upgradeUnit(unitId: string, rule: CompiledRule, member: string, since: number): Promise<void> {
    const corr = this.spec!
    const open = this.singles.get(unitId)
    if (!open) return
    for (const [id, a] of open) {
      if (a.firstSeen < since) {
        open.delete(id)
        continue
      }
      // A second detector confirms; the same detector point again does not.
      if (a.member === member || (!corr.confirmBy.includes(rule.id) && !corr.verify.includes(rule.id))) continue
      open.delete(id)
      await this.alerts.upgrade(id, TWO_SOURCES, { confirmedBy: member, titleZh: '火警（双源确认）' })
    }
    if (open.size === 0) this.singles.delete(unitId)
  }
}
