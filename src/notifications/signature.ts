/**
 * Signatures of webhook and 119 deliveries (docs/NOTIFICATIONS.md, "Signatures"):
 *
 *   X-Firewatch-Signature: t=<unix ms>,v1=<lowercase hex HMAC-SHA256(key = secret as UTF-8, message = "<t>.<body>")>
 *
 * `body` is the request body exactly as sent (UTF-8 JSON). The time is in the signed message, so a receiver that
 * refuses an old `t` (5 minutes is the suggested tolerance) cannot be fed a recorded delivery again.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const SIGNATURE_HEADER = 'x-firewatch-signature'
export const DELIVERY_HEADER = 'x-firewatch-delivery'
export const EVENT_HEADER = 'x-firewatch-event'

export function signature(secret: string, body: string, t: number = Date.now()): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${t}.${body}`, 'utf8').digest('hex')
  return `t=${t},v1=${mac}`
}

/** Whether a header signs this body with this secret, no older than `toleranceMs` (receivers; the tests). */
export function verifySignature(secret: string, body: string, header: string, now = Date.now(), toleranceMs = 300_000): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]))
  const t = Number(parts.t)
  if (!Number.isSafeInteger(t) || Math.abs(now - t) > toleranceMs || !parts.v1) return false
  const expected = Buffer.from(signature(secret, body, t).split('v1=')[1]!, 'hex')
  const given = Buffer.from(parts.v1, 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** A new webhook secret: 256 random bits, shown to its creator once. */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`
