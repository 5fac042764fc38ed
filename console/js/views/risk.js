// Units ranked by risk (GET /risk): score and level, open alerts, offline devices; each links to its unit page.
// A page of 100 at a time: "more" fetches the next one with the previous page's nextCursor and appends it.
import { h, link, mount } from '../dom.js'
import { t, formatTime } from '../i18n.js'
import { api } from '../api.js'

const PAGE = 100

const row = (u) =>
  h(
    'tr',
    { class: `lvl-${u.level ?? 'none'}`, dataset: { unitId: u.unitId } },
    h('td', {}, u.level ? h('span', { class: `level level-${u.level}` }, t(u.level)) : t('notScored')),
    h('td', { class: 'num', title: u.computedAt ? formatTime(u.computedAt) : '' }, u.score ?? '—'),
    h('td', {}, link(['units', u.unitId], u.name), h('div', { class: 'muted' }, u.address)),
    h('td', {}, t(u.category)),
    h('td', { class: u.openFireAlerts > 0 ? 'num hot' : 'num' }, u.openAlerts, u.openFireAlerts > 0 ? ` (${t('fire')} ${u.openFireAlerts})` : ''),
    h('td', { class: u.offlineDevices > 0 ? 'num warn' : 'num' }, u.offlineDevices),
    h('td', { class: 'num' }, u.devices)
  )

export async function showRisk(el) {
  mount(el, h('p', { class: 'muted' }, t('loading')))
  const first = await api('GET', `/risk?limit=${PAGE}`)
  const tbody = h('tbody', {}, first.items.map(row))
  const footer = h('p', { class: 'muted risk-more' })
  let shown = first.items.length
  const showFooter = (page) => {
    mount(
      footer,
      `${shown} / ${page.total} `,
      page.nextCursor &&
        h(
          'button',
          {
            class: 'btn more',
            type: 'button',
            onclick: async (ev) => {
              ev.currentTarget.disabled = true
              const next = await api('GET', `/risk?limit=${PAGE}&cursor=${encodeURIComponent(page.nextCursor)}`)
              tbody.append(...next.items.map(row))
              shown += next.items.length
              showFooter(next)
            }
          },
          t('more')
        )
    )
  }
  showFooter(first)
  mount(
    el,
    h(
      'table',
      { class: 'grid risk' },
      h('thead', {}, h('tr', {}, ['level', 'score', 'unit', 'category', 'openAlerts', 'offlineDevices', 'devices'].map((k) => h('th', {}, t(k))))),
      tbody
    ),
    footer
  )
}
