// The live alert list: fire alarms on top in red, acknowledge in one click, resolve with a disposition and a comment
// in two (Resolve…, then the disposition).
import { h, link, mount } from '../dom.js'
import { t, formatTime } from '../i18n.js'
import { api, currentUser } from '../api.js'
import { alertTitle, openFires, putAlert, sortedAlerts, unitName } from '../alert-store.js'

const DISPOSITIONS = ['false_alarm', 'real_fire', 'test', 'device_fault', 'other']
/** The alert whose resolve panel is open, and what was typed in its comment (kept across redraws). */
let resolving = null
let draft = ''
let failure = null
let focusComment = false

const mayAct = () => ['admin', 'operator'].includes(currentUser()?.role)

async function act(alert, path, body) {
  failure = null
  try {
    putAlert(await api('POST', `/alerts/${encodeURIComponent(alert.id)}/${path}`, body))
    if (path === 'resolve') {
      resolving = null
      draft = ''
    }
  } catch (err) {
    failure = `${t('actionFailed')}: ${err.message}`
  }
  render()
}

function actions(a) {
  if (!mayAct()) return null
  return h(
    'div',
    { class: 'actions' },
    a.status === 'open' && h('button', { class: 'btn ack', type: 'button', onclick: () => act(a, 'ack', {}) }, t('ack')),
    // A fire confirmed as real (GB 50440) is what goes on to the fire brigade; it stays open until disposed of.
    a.class === 'fire' && !a.confirmedAt && h('button', { class: 'btn confirm', type: 'button', onclick: () => act(a, 'confirm', {}) }, t('confirmFire')),
    h('button', { class: 'btn resolve', type: 'button', onclick: () => { resolving = resolving === a.id ? null : a.id; draft = ''; focusComment = true; render() } }, t('resolve'))
  )
}

function resolvePanel(a) {
  const comment = h('input', { class: 'comment', type: 'text', maxlength: 2000, placeholder: t('comment'), value: draft, oninput: (e) => (draft = e.target.value) })
  return h(
    'tr',
    { class: 'resolve-row', dataset: { alertId: a.id } },
    h(
      'td',
      { colspan: 7 },
      h('span', { class: 'prompt' }, t('dispositionPrompt')),
      comment,
      DISPOSITIONS.map((d) =>
        h('button', { class: `btn disp disp-${d}`, type: 'button', dataset: { disposition: d }, onclick: () => act(a, 'resolve', { disposition: d, ...(draft.trim() ? { comment: draft.trim() } : {}) }) }, t(d))
      ),
      h('button', { class: 'btn cancel', type: 'button', onclick: () => { resolving = null; render() } }, t('cancel'))
    )
  )
}

function row(a) {
  const text = typeof a.detail?.text === 'string' ? a.detail.text : ''
  return h(
    'tr',
    { class: `alert cls-${a.class} st-${a.status}`, dataset: { alertId: a.id, class: a.class, status: a.status, confirmed: a.confirmedAt ? 'yes' : 'no' } },
    h('td', { class: 'time' }, formatTime(a.firstSeen)),
    h('td', {}, h('span', { class: `badge cls-${a.class}` }, t(a.class)), ' ', h('span', { class: `sev sev-${a.severity}` }, t(a.severity))),
    h('td', {}, link(['units', a.unitId], unitName(a.unitId))),
    h('td', {}, a.deviceId ? link(['devices', a.deviceId], a.deviceId) : '—', a.point ? h('div', { class: 'muted' }, a.point) : null),
    h('td', { class: 'title' }, alertTitle(a), text ? h('div', { class: 'muted' }, text) : null, a.count > 1 ? h('span', { class: 'count' }, `×${a.count}`) : null),
    h(
      'td',
      {},
      t(a.status),
      a.acknowledgedBy ? h('div', { class: 'muted' }, t('acknowledgedBy') + a.acknowledgedBy) : null,
      a.confirmedBy ? h('div', { class: 'confirmed' }, t('confirmedBy') + a.confirmedBy) : null
    ),
    h('td', {}, actions(a))
  )
}

let root = null

export function render() {
  if (!root?.isConnected) return
  const list = sortedAlerts()
  const fires = openFires()
  mount(
    root,
    fires.length > 0 &&
      h('div', { class: 'fire-banner', role: 'alert' }, h('strong', {}, `${t('fireBanner')} ×${fires.length}`), ' ', t('openFires'), ' — ', unitName(fires[0].unitId), ' · ', alertTitle(fires[0])),
    failure && h('div', { class: 'error' }, failure),
    list.length === 0
      ? h('p', { class: 'empty' }, t('noAlerts'))
      : h(
          'table',
          { class: 'grid alerts' },
          h('thead', {}, h('tr', {}, ['time', 'class', 'unit', 'device', 'title_', 'status', 'actions'].map((k) => h('th', {}, t(k))))),
          h('tbody', {}, list.flatMap((a) => (a.id === resolving ? [row(a), resolvePanel(a)] : [row(a)])))
        )
  )
  if (focusComment) root.querySelector('.resolve-row input')?.focus()
  focusComment = false
}

export function showAlerts(el) {
  root = el
  render()
}
