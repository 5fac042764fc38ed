/**
 * What a simulated device reports at each step. Time is counted in steps (one per `--interval`), so a scenario's
 * timeline is the same at any speed: a demo runs it at 1 s per step, a test at 50 ms.
 */
import type { EventItem } from '../../schemas/device-payloads.js'

export type EventType = EventItem['type']

/** An event as the device raises it; the client adds `ts` and `seq`. */
export interface SimEvent {
  type: EventType
  point?: string
  text?: string
}

export interface Step {
  values: Record<string, number>
  events: SimEvent[]
}

/**
 * The device at step k. Values are pure functions of (k, seed); a behaviour that latches state (a detector in
 * alarm) must be called with k = 0, 1, 2, … in order, as the runner does.
 */
export type Behaviour = (k: number) => Step

export const round = (value: number, digits: number): number => Number(value.toFixed(digits))

/** Linear from v0 at step k0 to v1 at step k1, flat outside. */
export function ramp(k: number, k0: number, v0: number, k1: number, v1: number): number {
  if (k <= k0) return v0
  if (k >= k1) return v1
  return v0 + ((v1 - v0) * (k - k0)) / (k1 - k0)
}

/** A slow daily swing (indoor temperature), with one day taken as 86,400 steps (1 s each at the default interval). */
export const daily = (k: number, phase: number): number => Math.sin((2 * Math.PI * k) / 86_400 + phase)

/** The profiles' safe minimum for `battery_pct` (devices/*.yaml): a `low_battery` event when the charge falls under it. */
export const LOW_BATTERY_PCT = 20

/** Battery charge that only falls: `startPct` less `drainPerStep` each step, never below 0. */
export const batteryPct = (k: number, startPct: number, drainPerStep: number): number =>
  Math.max(0, startPct - drainPerStep * k)

/** `low_battery` once: at the first step whose charge is under the limit (the charge never rises, so never again). */
export function lowBatteryEvents(k: number, pct: (k: number) => number): SimEvent[] {
  const now = pct(k)
  if (now >= LOW_BATTERY_PCT || (k > 0 && pct(k - 1) < LOW_BATTERY_PCT)) return []
  return [{ type: 'low_battery', text: `battery ${round(now, 1)} %` }]
}

/** Events scheduled by step: `{ 2: [fire], 12: [restore] }`. */
export const timeline =
  (at: Record<number, SimEvent[]>) =>
  (k: number): SimEvent[] =>
    at[k] ?? []
