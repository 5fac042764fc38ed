// The console's shell: login, header (live state, sound, language, user), hash routes to the views.
import { h, mount } from './dom.js'
import { t, toggleLang, onLangChange, getLang } from './i18n.js'
import { ApiError, currentUser, login, logout, onSessionChange } from './api.js'
import { connectLive } from './live.js'
import { alertTitle, clearAlerts, onAlertsChange, openFires, putAlert, reloadAlerts, unitName } from './alert-store.js'
import { isMuted, setMuted, unlockAudio } from './alarm-sound.js'
import { render as renderAlerts, showAlerts } from './views/alerts.js'
import { showRisk } from './views/risk.js'
import { showUnit } from './views/unit.js'
import { showDevice } from './views/device.js'

const app = document.getElementById('app')
let stopLive = null
let liveState = 'connecting'
let notice = null
/** The last 119 forward the server gave up on: the operator must phone 119. */
let phone119 = null
let loggingOut = false
const main = h('main', { id: 'view' })
const header = h('header', { class: 'top' })

/** The page the hash names: `alerts` (the default), `risk`, `units` or `devices` with an id. */
function route() {
  const [name, id] = location.hash.slice(1).split('/').map(decodeURIComponent)
  if ((name === 'units' || name === 'devices') && id) return { name, id }
  return { name: name === 'risk' ? 'risk' : 'alerts', id: undefined }
}

function drawHeader() {
  const user = currentUser()
  const fires = openFires().length
  const { name } = route()
  document.title = `${fires > 0 ? `🔥 ${fires} · ` : ''}${t('title')}`
  mount(
    header,
    h('div', { class: 'brand' }, h('span', { class: 'logo' }, 'FW'), t('title')),
    h('nav', {}, ['alerts', 'risk'].map((r) => h('a', { href: `#${r}`, class: name === r ? 'on' : '' }, t(r), r === 'alerts' && fires > 0 ? h('span', { class: 'pill' }, String(fires)) : null))),
    h('div', { class: 'tools' },
      h('span', { class: `live live-${liveState}`, id: 'live-state' }, t(liveState === 'live' ? 'live' : liveState === 'connecting' ? 'connecting' : 'offline')),
      h('button', { type: 'button', class: isMuted() ? 'btn sound muted' : 'btn sound', id: 'sound', onclick: () => { unlockAudio(); setMuted(!isMuted()); drawHeader() } }, isMuted() ? t('soundOff') : t('soundOn')),
      h('button', { type: 'button', class: 'btn', id: 'lang', onclick: toggleLang }, t('lang')),
      h('span', { class: 'user' }, `${user.displayName ?? user.username} · ${t(`role_${user.role}`)}`),
      h('button', { type: 'button', class: 'btn', id: 'logout', onclick: () => { loggingOut = true; void logout() } }, t('logout'))
    ),
    phone119 && h('div', { class: 'notice phone-119', role: 'alert' }, phone119),
    notice && h('div', { class: 'notice' }, notice)
  )
}

async function drawView() {
  const { name, id } = route()
  drawHeader()
  // A container per drawing: a slow page that finishes after the user moved on writes into a detached one.
  const view = h('div', { class: 'view', dataset: { view: name } })
  mount(main, view)
  try {
    if (name === 'units') await showUnit(view, id)
    else if (name === 'devices') await showDevice(view, id)
    else if (name === 'risk') await showRisk(view)
    else showAlerts(view)
  } catch (err) {
    mount(view, h('div', { class: 'error' }, `${t('actionFailed')}: ${err.message}`))
  }
}

function showLogin(message) {
  stopLive?.()
  stopLive = null
  clearAlerts()
  const user = h('input', { name: 'username', autocomplete: 'username', required: true })
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
  const error = h('div', { class: 'error', role: 'alert' }, message ?? '')
  const form = h(
    'form',
    { class: 'login', onsubmit: async (e) => {
      e.preventDefault()
      unlockAudio()
      try {
        await login(user.value, pass.value)
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 429 ? t('loginLocked') : t('loginFailed')
      }
    } },
    h('div', { class: 'brand big' }, h('span', { class: 'logo' }, 'FW'), t('title')),
    h('label', {}, t('username'), user),
    h('label', {}, t('password'), pass),
    h('button', { type: 'submit', class: 'btn primary' }, t('login')),
    error,
    h('button', { type: 'button', class: 'btn link', onclick: toggleLang }, t('lang'))
  )
  mount(app, form)
  user.focus()
}

async function start() {
  mount(app, header, main)
  notice = null
  phone119 = null
  await reloadAlerts().catch(() => undefined)
  stopLive = connectLive({
    onMessage: (msg) => {
      if (msg.type === 'alert') putAlert(msg.alert)
      // The server could not reach the 119 command center: the operator must phone (GB 50440). Stays until a reload.
      if (msg.type === 'alert' && msg.change === 'forward_119_gave_up') {
        phone119 = `${t('forward119GaveUp')} — ${unitName(msg.alert.unitId)} · ${alertTitle(msg.alert)}`
        drawHeader()
      }
      // A device went online or offline: the page showing it reloads.
      const { name, id } = route()
      if (msg.type === 'device' && ((name === 'units' && id === msg.unitId) || (name === 'devices' && id === msg.deviceId))) void drawView()
    },
    onReset: () => {
      notice = t('reset')
      void reloadAlerts().catch(() => undefined)
    },
    onState: (s) => {
      liveState = s
      drawHeader()
    }
  })
  await drawView()
}

// One redraw per frame, however many changes arrived in it (an alarm storm).
let frame = 0
onAlertsChange(() => {
  if (!currentUser() || frame) return
  frame = requestAnimationFrame(() => {
    frame = 0
    drawHeader()
    renderAlerts() // draws only while the alerts page is on screen
  })
})
onSessionChange((user) => {
  if (user) void start()
  else showLogin(loggingOut ? undefined : t('sessionExpired'))
  loggingOut = false
})
onLangChange(() => {
  document.documentElement.lang = getLang() === 'zh' ? 'zh-CN' : 'en'
  if (currentUser()) void drawView()
  else showLogin()
})
window.addEventListener('hashchange', () => void drawView())

document.documentElement.lang = getLang() === 'zh' ? 'zh-CN' : 'en'
if (currentUser()) void start()
else showLogin()
