/** The live channel's close codes and limits (src/api/live/live-hub.ts describes the protocol). */
/** The close codes of the live channel (see the module comment). */
export const LIVE_CLOSE = {
  badRequest: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  tooSlow: 4408,
  goingAway: 1001,
  internal: 1011,
  tryAgain: 1013
} as const

export interface LiveLimits {
  /** Keep-alive: a ping this often; a socket that did not answer the previous one is cut, and credentials re-checked. */
  pingMs: number
  /** Bytes a socket may have waiting to be written before it is dropped as too slow (4408). */
  maxBufferedBytes: number
  /** Live messages a socket may hold back while it catches up with the stream before it is dropped (4408). */
  maxQueued: number
  /** Stream entries read per page while catching up; the next page waits until the previous one was written out. */
  page: number
}

export const DEFAULT_LIMITS: LiveLimits = { pingMs: 30_000, maxBufferedBytes: 1024 * 1024, maxQueued: 20_000, page: 500 }
