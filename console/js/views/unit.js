// A unit: its details and risk factors, its devices with their state, its recent alerts and events.
import { h, link, mount } from '../dom.js'
import { t, formatTime } from '../i18n.js'
import { api, qs } from '../api.js'
import { alertTitle } from '../alert-store.js'

const DAY = 24 * 3600 * 1000

export const deviceState = (d) => [
  h('span', { class: d.online ? 'state on' : 'state off' }, d.online ? t('online') : t('offlineState')),
  d.testModeUntil && Date.parse(d.testModeUntil) > Date.now() ? h('span', { class: 'state test' }, `${t('testMode')} ${t('until')} ${formatTime(d.testModeUntil)}`) : null
]

export const eventsTable = (events) =>
  events.length === 0
    ? h('p', { class: 'muted' }, t('none'))
    : h(
        'table',
        { class: 'grid events' },
        h('thead', {}, h('tr', {}, ['time', 'device', 'type', 'point', 'text'].map((k) => h('th', {}, t(k))))),
        h('tbody', {}, events.map((e) => h('tr', { class: `ev-${e.type}` }, h('td', {}, formatTime(e.ts)), h('td', {}, link(['devices', e.deviceId], e.deviceId)), h('td', {}, e.type), h('td', {}, e.point), h('td', {}, e.text))))
      )

export async function showUnit(el, id) {
  mount(el, h('p', { class: 'muted' }, t('loading')))
  const enc = encodeURIComponent(id)
  const [unit, risk, devices, alerts] = await Promise.all([
    api('GET', `/units/${enc}`),
    api('GET', `/units/${enc}/risk`),
    api('GET', `/devices${qs({ unitId: id, limit: 1000 })}`),
    api('GET', `/alerts${qs({ unitId: id, limit: 20 })}`)
  ])
  const from = new Date(Date.now() - DAY).toISOString()
  const perDevice = await Promise.all(
    devices.items.map((d) => api('GET', `/devices/${encodeURIComponent(d.id)}/events${qs({ from, limit: 50 })}`).then((r) => r.events.map((e) => ({ ...e, deviceId: d.id })), () => []))
  )
  const events = perDevice.flat().sort((a, b) => b.ts - a.ts).slice(0, 50)
  mount(
    el,
    h('p', {}, link(['risk'], `← ${t('back')}`)),
    h('h2', {}, unit.name, ' ', h('span', { class: `level level-${risk.level}` }, `${t(risk.level)} · ${risk.score}`)),
    h('dl', { class: 'facts' }, h('dt', {}, t('address')), h('dd', {}, unit.address), h('dt', {}, t('category')), h('dd', {}, t(unit.category)), h('dt', {}, t('contact')), h('dd', {}, `${unit.contactName} ${unit.contactPhone}`)),
    h('h3', {}, t('riskFactors')),
    h('ul', { class: 'factors' }, risk.factors.filter((f) => f.points !== 0).map((f) => h('li', {}, h('strong', {}, `+${f.points} ${t(`factor_${f.factor}`)}`), ' ', h('span', { class: 'muted' }, f.note)))),
    h('h3', {}, t('deviceList')),
    h(
      'table',
      { class: 'grid devices' },
      h('thead', {}, h('tr', {}, ['device', 'kind', 'status', 'lastSeen'].map((k) => h('th', {}, t(k))))),
      h('tbody', {}, devices.items.map((d) => h('tr', { dataset: { deviceId: d.id } }, h('td', {}, link(['devices', d.id], d.name || d.id)), h('td', {}, d.kind), h('td', {}, deviceState(d)), h('td', {}, formatTime(d.lastSeenAt)))))
    ),
    h('h3', {}, t('recentAlerts')),
    h('ul', { class: 'recent' }, alerts.items.map((a) => h('li', { class: `cls-${a.class}` }, `${formatTime(a.firstSeen)} · ${t(a.class)} · ${alertTitle(a)} · ${t(a.status)}${a.disposition ? ` (${t(a.disposition)})` : ''}`))),
    h('h3', {}, t('recentEvents')),
    eventsTable(events)
  )
}
