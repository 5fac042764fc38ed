/**
 * Every alert change goes through here: the repository records it, then each listener hears of it (live output,
 * escalation timers, notifications, the unit risk score). The API and the rule engine use the same methods, so an
 * operator's acknowledgement and the engine's raise have the same consequences.
 */
import type { Logger } from '../logger.js'
import type { Alert, AlertsQuery, AlertTransition, OperatorDisposition } from '../../schemas/alerts.js'
import type { AlertChange, AlertKey, AlertRepository, AlertResult, RaiseInput } from './alert-repository.js'

export type AlertListener = (alert: Alert, change: AlertChange) => Promise<void> | void

export class AlertService {
  private readonly listeners: { name: string; fn: AlertListener }[] = []

  constructor(
    readonly repo: AlertRepository,
    private readonly log: Logger
  ) {}

  /** Listeners run in the order they were added; one failing is logged and does not stop the others. */
  on(name: string, fn: AlertListener): void {
    this.listeners.push({ name, fn })
  }

  raise(input: RaiseInput): Promise<AlertResult> {
    return this.emit(this.repo.raise(input))
  }

  async clear(key: AlertKey, at: Date, detail?: Record<string, unknown>): Promise<AlertResult | null> {
    return this.emitMaybe(this.repo.clear(key, at, detail))
  }

  acknowledge(id: string, actor: string, comment: string | null = null): Promise<AlertResult> {
    return this.emit(this.repo.acknowledge(id, actor, comment))
  }

  confirm(id: string, actor: string, comment: string | null = null): Promise<AlertResult> {
    return this.emit(this.repo.confirm(id, actor, comment))
  }

  /**
   * A fire alert closed as a real fire without a confirmation first is confirmed on the way (its own change, so the
   * 119 forward hears of it): GB 50440 wants every confirmed fire alarm at the 119 command center, whichever button
   * the operator pressed.
   */
  async resolve(id: string, actor: string, disposition: OperatorDisposition, comment: string | null = null): Promise<AlertResult> {
    if (disposition === 'real_fire') {
      const a = await this.repo.get(id)
      if (a && a.class === 'fire' && a.status !== 'resolved' && !a.confirmedAt) await this.confirm(id, actor, comment)
    }
    return this.emit(this.repo.resolve(id, actor, disposition, comment))
  }

  setIsolation(id: string, actor: string, owner: string, expiresAt: Date, comment: string | null = null): Promise<AlertResult> {
    return this.emit(this.repo.setIsolation(id, actor, owner, expiresAt, comment))
  }

  escalate(id: string, level: number): Promise<AlertResult | null> {
    return this.emitMaybe(this.repo.escalate(id, level))
  }

  upgrade(id: string, title: string, detail: Record<string, unknown>): Promise<AlertResult | null> {
    return this.emitMaybe(this.repo.upgrade(id, title, detail))
  }

  get(id: string): Promise<Alert | null> {
    return this.repo.get(id)
  }

  transitions(id: string): Promise<AlertTransition[]> {
    return this.repo.transitions(id)
  }

  /** `scope`: only alerts of units in that jurisdiction subtree; null (the default): every alert. */
  list(q: Partial<AlertsQuery>, scope: string | null = null): Promise<{ items: Alert[]; total: number }> {
    return this.repo.list(q, scope)
  }

  private async emitMaybe(pending: Promise<AlertResult | null>): Promise<AlertResult | null> {
    const result = await pending
    if (result) await this.notify(result)
    return result
  }

  private async emit(pending: Promise<AlertResult>): Promise<AlertResult> {
    const result = await pending
    await this.notify(result)
    return result
  }

  /**
   * Tell every listener; when all of them succeeded the change is marked dispatched. A change left undispatched (a
   * listener failed, or the process died after the commit) is dispatched again by {@link redispatch}: listeners are
   * idempotent (job ids, upserts) or at-least-once by nature (a live message may come twice, never not at all).
   */
  private async notify(result: AlertResult): Promise<void> {
    if (!result.change) return
    let ok = true
    for (const { name, fn } of this.listeners) {
      try {
        await fn(result.alert, result.change)
      } catch (err) {
        ok = false
        this.log.error({ err, listener: name, alertId: result.alert.id, change: result.change }, 'alert listener failed; the change will be dispatched again')
      }
    }
    if (ok && result.transitionId) {
      await this.repo.markDispatched(result.transitionId).catch((err: unknown) => this.log.warn({ err }, 'dispatch not recorded; the change may be dispatched twice'))
    }
  }

  /** Dispatch changes committed more than `olderThanMs` ago and never dispatched. Returns how many. */
  async redispatch(olderThanMs = 10_000): Promise<number> {
    const pending = await this.repo.undispatched(olderThanMs)
    for (const p of pending) await this.notify({ alert: p.alert, change: p.change, transitionId: p.transitionId })
    if (pending.length > 0) this.log.warn({ changes: pending.length }, 'alert changes dispatched again after a failure')
    return pending.length
  }
}
