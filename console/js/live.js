// The live channel (README "Live channel"): WebSocket /api/v1/live with the access token, resumed after a reconnect
// from the last event id; a `reset` means changes were missed, so the views reload from the REST API.
import { accessToken, refresh } from './api.js'

/**
 * handlers: onMessage(msg) for alert and device changes, onReset() to reload, onState('live'|'connecting'|'offline').
 * Returns stop().
 */
export function connectLive({ onMessage, onReset, onState }) {
  let lastEventId = null
  let ws = null
  let stopped = false
  let delay = 500
  let timer = null

  const open = () => {
    const token = accessToken()
    if (stopped || !token) return
    onState('connecting')
    const q = new URLSearchParams({ token })
    if (lastEventId) q.set('lastEventId', lastEventId)
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live?${q}`)
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data)
      if (msg.eventId) lastEventId = msg.eventId
      if (msg.type === 'ready') {
        delay = 500
        onState('live')
      } else if (msg.type === 'reset') {
        onReset()
      } else {
        onMessage(msg)
      }
    }
    ws.onclose = async (e) => {
      ws = null
      if (stopped) return
      onState('offline')
      // 4401: the token expired or was revoked: a fresh one, then resume. 4400: our event id is unusable: start over.
      if (e.code === 4401) await refresh().catch(() => undefined)
      if (e.code === 4400) lastEventId = null
      timer = setTimeout(open, delay)
      delay = Math.min(delay * 2, 10_000)
    }
  }
  open()
  return () => {
    stopped = true
    clearTimeout(timer)
    ws?.close(1000)
  }
}
