/**
 * The 119 forward: when an operator confirms a fire alarm, it goes to the 119 command center's endpoint
 * (FORWARD_119_URL), signed like a webhook. GB 50440: the monitoring center forwards a confirmed fire alarm to the 119
 * command center within 3 s of the confirmation.
 *
 * This file is the producing side, built in every thread that changes alerts. Durable from the confirmation on: the
 * job is enqueued by an alert listener, which runs before the confirm is answered; should the process die between the
 * commit and the enqueue, the confirmation stays undispatched and the engine's instance dispatches it again
 * (alert-service.ts, `redispatch`). The job id is the alert's, so a confirmation dispatched twice is one job.
 * The job is delivered by the forward's own thread (forward-worker.ts, forward-119-delivery.ts), and kept when it fails
 * so that its give-up survives that thread dying.
 */
import type { Config } from '../config/index.js'
import type { Pool } from '../store/postgres.js'
import type { Alert } from '../../schemas/alerts.js'
import type { Unit } from '../../schemas/api.js'
import type { AlertChange } from '../alerts/alert-repository.js'
import { RegistryRepository } from '../store/registry-repository.js'
import { jobId, type Jobs } from '../rules/jobs.js'

/** A forward job: the alert and its unit as at the confirmation (older jobs: the id only). */
export interface ForwardData {
  alertId: string
  alert?: Alert
  unit?: Unit | null
}

export interface ForwardStats {
  delivered: number
  /** Attempts that failed (each retried until the last). */
  failed: number
  gaveUp: number
}

export class Forward119 {
  private readonly registry: RegistryRepository

  constructor(private readonly d: { pool: Pool; jobs: Jobs; target: Config['forward119'] }) {
    this.registry = new RegistryRepository(d.pool)
  }

  /**
   * Alert listener: a confirmed fire alarm is enqueued before the confirmation is answered, with the alert and its unit
   * as they are now, so the forward itself needs no database (a PostgreSQL failover must not hold a fire alarm back).
   */
  readonly onAlertChange = async (alert: Alert, change: AlertChange): Promise<void> => {
    if (change !== 'confirmed' || alert.class !== 'fire' || !this.d.target) return
    // Not read now (PostgreSQL failing this instant): the handler reads it, rather than the forward wait for a redispatch.
    const unit = await this.registry.getUnit(alert.unitId).catch(() => undefined)
    await this.d.jobs.enqueue('forward119', 'forward', jobId('fwd119', alert.id), { alertId: alert.id, alert, unit }, {
      attempts: this.d.target.attempts,
      backoff: { type: 'fast' },
      // However it fails, it is given up (the operators told to phone 119) from the failed set: see forward-119-delivery.ts.
      keepFailed: true
    })
  }
}
