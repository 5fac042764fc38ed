// The unresolved alerts in the caller's scope: loaded from GET /alerts, kept current by the live channel.
// Views and the alarm sound subscribe to it; resolved alerts leave it.
import { api } from './api.js'
import { setAlarm } from './alarm-sound.js'
import { getLang } from './i18n.js'

const alerts = new Map()
/** Ids of alerts resolved while the page was open: a late live message about them must not bring them back. */
const resolved = new Set()
const listeners = new Set()
/** unit id → unit, for names (units never move or disappear from scope while the page is open). */
const units = new Map()

const CLASS_ORDER = { fire: 0, supervisory: 1, trouble: 2, isolation: 3, test: 4 }
const STATUS_ORDER = { open: 0, acknowledged: 1, resolved: 2 }

export const onAlertsChange = (fn) => listeners.add(fn)

/** Fire first, open before acknowledged, newest first. */
export const sortedAlerts = () =>
  [...alerts.values()].sort(
    (a, b) =>
      (CLASS_ORDER[a.class] ?? 9) - (CLASS_ORDER[b.class] ?? 9) ||
      STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
      Date.parse(b.lastSeen) - Date.parse(a.lastSeen)
  )

export const openFires = () => [...alerts.values()].filter((a) => a.class === 'fire' && a.status === 'open')

/** The rule's Chinese title when the console is in Chinese and the rule has one. */
export const alertTitle = (a) => (getLang() === 'zh' && typeof a.detail?.titleZh === 'string' ? a.detail.titleZh : a.title)

export const unitName = (id) => units.get(id)?.name ?? id

function changed() {
  setAlarm(openFires().length > 0)
  for (const fn of listeners) fn()
}

async function learnUnit(id) {
  if (units.has(id)) return
  units.set(id, { id, name: id })
  try {
    units.set(id, await api('GET', `/units/${encodeURIComponent(id)}`))
    changed()
  } catch {
    // The id stands in for the name.
  }
}

/** (Re)load everything: at login and after the live channel's `reset`. */
export async function reloadAlerts() {
  const [list, unitList] = await Promise.all([api('GET', '/alerts?status=unresolved&limit=1000'), api('GET', '/units?limit=1000')])
  for (const u of unitList.items) units.set(u.id, u)
  alerts.clear()
  resolved.clear()
  for (const a of list.items) alerts.set(a.id, a)
  changed()
}

/** An alert as a REST reply or a live message carries it (the newer wins; the live channel may lag an action's reply). */
export function putAlert(alert) {
  const known = alerts.get(alert.id)
  if (resolved.has(alert.id) || (known && rank(known) > rank(alert))) return
  if (alert.status === 'resolved') {
    alerts.delete(alert.id)
    resolved.add(alert.id)
  } else {
    alerts.set(alert.id, alert)
  }
  if (!units.has(alert.unitId)) void learnUnit(alert.unitId)
  changed()
}

// Status only moves forward; within a status the later lastSeen or escalation wins.
const rank = (a) => STATUS_ORDER[a.status] * 1e15 + Date.parse(a.lastSeen)

export function clearAlerts() {
  alerts.clear()
  resolved.clear()
  units.clear()
  changed()
}
