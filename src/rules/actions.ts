/**
 * What the evaluator's effects do outside the engine: alerts raised and cleared (through AlertService, so every
 * listener hears of them), duration timers started and cancelled (BullMQ delayed jobs). A device in test mode raises
 * test alerts; a rule that takes part in fire alarm verification raises through the correlation.
 *
 * Every action is idempotent (one open alert per key, job ids), so an effect done again after a failure does no harm.
 */
import type { AlertService } from '../alerts/alert-service.js'
import type { RaiseInput } from '../alerts/alert-repository.js'
import type { CompiledRule } from './rule-set.js'
import type { Effect } from './evaluator.js'
import { jobId, type Jobs } from './jobs.js'
import type { Correlation } from './correlation.js'
import { testRuleId, type TestModes } from './test-modes.js'
import type { EngineStats } from './engine-stats.js'

export interface DeviceContext {
  deviceId: string
  unitId: string
  /** Profile name. */
  profile: string
}

/** The id of a duration timer: one per device, rule, point and start of the condition. */
export const durationJobId = (deviceId: string, ruleId: string, point: string, since: number) => jobId('dur', deviceId, ruleId, point, since)

export class RuleActions {
  constructor(
    private readonly d: { alerts: AlertService; jobs: Jobs; correlation: Correlation; testModes: TestModes; stats: EngineStats }
  ) {}

  async apply(ctx: DeviceContext, effects: Effect[]): Promise<void> {
    for (const e of effects) {
      this.d.stats.effects++
      const key = { unitId: ctx.unitId, deviceId: ctx.deviceId, point: e.point, ruleId: e.rule.id }
      switch (e.type) {
        case 'raise':
          await this.raise(ctx, e.rule, e.point, e.at, e.detail)
          break
        case 'clear': {
          const at = new Date(Math.min(e.at, Date.now()))
          await this.d.alerts.clear(key, at, e.detail)
          // It may have been raised while the device was in test mode.
          if (e.rule.class !== 'test') await this.d.alerts.clear({ ...key, ruleId: testRuleId(e.rule.id) }, at, e.detail)
          break
        }
        case 'startTimer':
          await this.d.jobs.schedule('timers', 'duration', durationJobId(ctx.deviceId, e.rule.id, e.point, e.since), e.dueAt - Date.now(), {
            ...ctx,
            ruleId: e.rule.id,
            point: e.point,
            since: e.since
          })
          break
        case 'cancelTimer':
          await this.d.jobs.cancel('timers', durationJobId(ctx.deviceId, e.rule.id, e.point, e.since))
          break
      }
    }
  }

  private async raise(ctx: DeviceContext, rule: CompiledRule, point: string, at: number, detail: Record<string, unknown>): Promise<void> {
    const test = rule.class === 'test' || this.d.testModes.has(ctx.deviceId)
    // A device clock far off must not put an alert in the future.
    const when = new Date(Math.min(at, Date.now()))
    const input: RaiseInput = {
      unitId: ctx.unitId,
      deviceId: ctx.deviceId,
      point,
      // A test alert never shares the open-alert key of a real one (a test must not count as a real recurrence).
      ruleId: test && rule.class !== 'test' ? testRuleId(rule.id) : rule.id,
      class: test ? 'test' : rule.class,
      troubleType: test ? null : rule.troubleType,
      severity: test ? 'info' : rule.severity,
      title: rule.title,
      detail: { ...detail, ...(rule.titleZh ? { titleZh: rule.titleZh } : {}), ...(test && rule.class !== 'test' ? { testOf: rule.class } : {}) },
      at: when,
      isolationExpiresAt: rule.class === 'isolation' && !test ? new Date(when.getTime() + rule.isolationExpiryS * 1000) : null
    }
    if (test || !this.d.correlation.covers(rule.id)) {
      await this.d.alerts.raise(input)
      return
    }
    await this.d.correlation.raise(ctx, rule, point, input)
  }
}
