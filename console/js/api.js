// The session and the REST API (README "API"): log in, refresh the access token before it expires, call /api/v1.
// The session lives in sessionStorage: a reload keeps it, closing the tab ends it.
const KEY = 'firewatch.session'
let session = JSON.parse(sessionStorage.getItem(KEY) ?? 'null')
let refreshTimer = null
let refreshing = null
const listeners = new Set()

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.code
  }
}

export const currentUser = () => session?.user ?? null
export const accessToken = () => session?.accessToken ?? null
/** Called with the user after login, with null after logout or an expired session. */
export const onSessionChange = (fn) => listeners.add(fn)

function store(s) {
  session = s
  clearTimeout(refreshTimer)
  if (s) {
    sessionStorage.setItem(KEY, JSON.stringify(s))
    // Refresh at 80 % of the lifetime (at least 5 s ahead), so a call never carries an expired token.
    const due = Math.max(1000, s.expiresAt - Date.now() - Math.max(5000, (s.expiresAt - s.issuedAt) * 0.2))
    refreshTimer = setTimeout(() => void refresh().catch(() => undefined), due)
  } else {
    sessionStorage.removeItem(KEY)
  }
}

function accept(reply) {
  const now = Date.now()
  store({ ...reply, issuedAt: now, expiresAt: now + reply.expiresIn * 1000 })
}

async function post(path, body) {
  const res = await fetch(`/api/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, json)
  return json
}

export async function login(username, password) {
  accept(await post('/auth/login', { username, password }))
  for (const fn of listeners) fn(session.user)
}

/** A new token pair; one refresh at a time (each refresh token works once). */
export function refresh() {
  refreshing ??= (async () => {
    try {
      if (!session) throw new ApiError(401, null)
      accept({ ...(await post('/auth/refresh', { refreshToken: session.refreshToken })), user: session.user })
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) expire()
      throw err
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

function expire() {
  store(null)
  for (const fn of listeners) fn(null)
}

export async function logout() {
  const s = session
  expire()
  if (s) await fetch('/api/v1/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${s.accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: s.refreshToken }) }).catch(() => undefined)
}

/** Call the API; a 401 refreshes the token once and retries. */
export async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    if (!session) throw new ApiError(401, null)
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${session.accessToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })
    if (res.status === 401 && attempt === 0) {
      await refresh()
      continue
    }
    const json = await res.json().catch(() => null)
    if (!res.ok) throw new ApiError(res.status, json)
    return json
  }
}

/** Query string of the defined values. */
export const qs = (params) => {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Resume the timer of a session kept across a reload. */
if (session) store(session)
