/** Counts refused device input per reason and logs each refusal with the device id. */
import type { Logger } from '../logger.js'
import { REJECT_REASONS, type RejectReason } from './types.js'

export class Rejections {
  readonly counts: Record<RejectReason, number> = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<
    RejectReason,
    number
  >

  constructor(private readonly log: Logger) {}

  record(reason: RejectReason, deviceId: string | null, detail: string, extra: Record<string, unknown> = {}): void {
    this.counts[reason]++
    // The detail may quote device input: it stays under its own key, never in the message.
    this.log.warn({ deviceId, reason, detail, ...extra }, 'device input rejected')
  }
}
