/** A fire alarm raised straight through the app's alert service, as the rule engine raises one from a panel's event. */
import type { App } from '../../src/app.js'
import type { Alert } from '../../schemas/alerts.js'

/** A single-source fire at `point` of `panel-1` in the unit: open, unconfirmed, ready to be confirmed and forwarded. */
export async function raiseFire(app: App, unitId: string, point: string): Promise<Alert> {
  const { alert } = await app.alerts.raise({
    unitId,
    deviceId: 'panel-1',
    point,
    ruleId: 'fire_event',
    class: 'fire',
    troubleType: null,
    severity: 'critical',
    title: 'smoke detector alarm',
    detail: {},
    at: new Date(),
    verification: 'single_source'
  })
  return alert
}
