// A device: its state, a chart per metric over a chosen range (uPlot, served from node_modules), recent events.
import uPlot from '../../vendor/uplot/uPlot.esm.js'
import { h, link, mount } from '../dom.js'
import { t, formatTime } from '../i18n.js'
import { api, qs } from '../api.js'
import { deviceState, eventsTable } from './unit.js'

const H = 3600 * 1000
/** Range → mean interval, so a chart holds a few hundred points at most (none: raw readings). */
const RANGES = { '1h': [H, null], '6h': [6 * H, '1m'], '24h': [24 * H, '5m'], '7d': [7 * 24 * H, '30m'] }
let range = '1h'

function chart(el, metric, points) {
  const xs = points.map((p) => p.ts / 1000)
  const ys = points.map((p) => p.values[metric] ?? null)
  const box = h('div', { class: 'chart', dataset: { metric } }, h('h4', {}, metric))
  el.append(box)
  new uPlot(
    {
      width: Math.max(320, el.clientWidth - 16),
      height: 220,
      series: [{}, { label: metric, stroke: '#ff6b3d', width: 2, fill: 'rgba(255,107,61,0.08)', spanGaps: false }],
      // The value axis wide enough for labels like 219.975 (uPlot's default cuts them).
      axes: [{ stroke: '#9aa4b2', grid: { stroke: '#2a3340' } }, { stroke: '#9aa4b2', grid: { stroke: '#2a3340' }, size: 72 }],
      legend: { show: true }
    },
    [xs, ys],
    box
  )
}

export async function showDevice(el, id) {
  mount(el, h('p', { class: 'muted' }, t('loading')))
  const enc = encodeURIComponent(id)
  const [span, every] = RANGES[range]
  const to = new Date()
  const from = new Date(to.getTime() - span)
  const [device, readings, events] = await Promise.all([
    api('GET', `/devices/${enc}`),
    api('GET', `/devices/${enc}/readings${qs({ from: from.toISOString(), to: to.toISOString(), every, limit: 5000 })}`),
    api('GET', `/devices/${enc}/events${qs({ from: new Date(to.getTime() - 24 * H).toISOString(), limit: 50 })}`)
  ])
  const metrics = [...new Set(readings.points.flatMap((p) => Object.keys(p.values)))].sort()
  const charts = h('div', { class: 'charts' })
  mount(
    el,
    h('p', {}, link(['units', device.unitId], `← ${t('back')}`)),
    h('h2', {}, device.name || device.id, ' ', deviceState(device)),
    h('dl', { class: 'facts' }, h('dt', {}, t('kind')), h('dd', {}, `${device.kind} (${device.protocol})`), h('dt', {}, t('lastSeen')), h('dd', {}, formatTime(device.lastSeenAt))),
    h(
      'div',
      { class: 'ranges' },
      h('span', {}, t('range'), ' '),
      Object.keys(RANGES).map((r) =>
        h('button', { type: 'button', class: r === range ? 'btn range on' : 'btn range', onclick: () => { range = r; void showDevice(el, id) } }, r)
      )
    ),
    charts,
    h('h3', {}, t('recentEvents')),
    eventsTable(events.events.map((e) => ({ ...e, deviceId: device.id })).reverse())
  )
  if (metrics.length === 0) charts.append(h('p', { class: 'muted' }, t('noData')))
  for (const m of metrics) chart(charts, m, readings.points)
}
