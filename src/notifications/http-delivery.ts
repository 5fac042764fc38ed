/**
 * One signed POST to a receiver (a webhook or the 119 command center). Only a 2xx answer is a delivery: a redirect is
 * not followed (the receiver moved: fix the URL, do not send fire alarms wherever a 3xx points) and, like every
 * answer of 300 or more, a timeout or a network error, it is a failed attempt the caller retries.
 */
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature } from './signature.js'

export interface Delivery {
  url: string
  secret: string
  /** Stable across attempts: the receiver drops one it already has. */
  deliveryId: string
  event: 'notification' | 'fire_confirmed'
  body: string
  timeoutMs: number
}

export type DeliveryResult = { ok: true; status: number; ms: number } | { ok: false; status: number | null; error: string; ms: number }

export async function deliver(d: Delivery): Promise<DeliveryResult> {
  const started = performance.now()
  const ms = () => Math.round(performance.now() - started)
  // Refused by the API and the configuration; checked again here because fetch's error would carry the password.
  const { username, password } = new URL(d.url)
  if (username || password) return { ok: false, status: null, error: 'the URL holds user:password@, which is never sent', ms: ms() }
  try {
    const res = await fetch(d.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(d.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Firewatch',
        [SIGNATURE_HEADER]: signature(d.secret, d.body),
        [DELIVERY_HEADER]: d.deliveryId,
        [EVENT_HEADER]: d.event
      },
      body: d.body
    })
    // The answer's body is not needed: release the connection.
    await res.body?.cancel().catch(() => undefined)
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, ms: ms() }
    return { ok: false, status: res.status, error: `answered ${res.status}`, ms: ms() }
  } catch (err) {
    const e = err as Error
    const error = e.name === 'TimeoutError' ? `no answer within ${d.timeoutMs} ms` : `${e.message}${causeOf(e)}`
    return { ok: false, status: null, error, ms: ms() }
  }
}

// fetch says only "fetch failed"; the reason (ECONNREFUSED, …) is its cause.
const causeOf = (e: Error) => {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause
  return cause ? `: ${cause.code ?? cause.message ?? ''}` : ''
}
