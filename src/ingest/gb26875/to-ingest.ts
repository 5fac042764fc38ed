/**
 * What a UITD's send-data frame means for Firewatch: status objects become device-contract events, analog values
 * become readings of the device's profile metrics. The results are payloads for `normalize()`, so the profile decides
 * what is stored exactly as it does for MQTT. Pure.
 */
import { createHash } from 'node:crypto'
import type { EventItem, TelemetryItem } from '../../../schemas/device-payloads.js'
import type { DeviceProfile } from '../../../schemas/device-profile.js'
import type { RejectReason } from '../types.js'
import type { AnalogValue, AppData, ComponentStatus, SystemStatus } from './app-data.js'
import { epochOf, type FrameTime } from './frame.js'

/**
 * Status bits → event types. GB/T 26875.3-2011, system and component status: bit 1 fire, 2 fault,
 * 3 disabled (屏蔽), 4 supervisory, 5 started, 6 feedback; component bit 8 power fault; system bits 8 main and 9 backup
 * power fault, 10 bus fault, 13 reset. Bit 0 (normal/test), bit 7 (delay), 11 (manual/auto) and 12 (configuration
 * changed) have no event of their own.
 */
type EventType = EventItem['type']

const COMPONENT_BITS: [number, EventType][] = [
  [1, 'fire'],
  [2, 'fault'],
  [3, 'isolate'],
  [4, 'supervisory'],
  [5, 'start'],
  [6, 'feedback'],
  [8, 'power_fault']
]
const SYSTEM_BITS: [number, EventType][] = [...COMPONENT_BITS, [9, 'power_fault'], [10, 'fault'], [13, 'reset']]

/**
 * Analog types (GB/T 26875.3-2011) → a profile metric and the scale of the raw int16. Only types with one
 * obvious metric are mapped; a value of another type, or of a metric the device's profile does not have, is refused.
 */
export const ANALOG_METRICS: Record<number, { metric: string; scale: number }> = {
  2: { metric: 'level_m', scale: 0.01 }, // height, 0.01 m
  3: { metric: 'temperature_c', scale: 0.1 }, // temperature, 0.1 °C
  4: { metric: 'pressure_mpa', scale: 0.1 }, // pressure, 0.1 MPa
  5: { metric: 'pressure_mpa', scale: 0.0001 } // pressure, 0.1 kPa
}

export interface FrameContent {
  events: EventItem[]
  readings: TelemetryItem[]
  /** Objects refused one by one (the others are still stored). */
  refused: { reason: RejectReason; detail: string }[]
  /** Decoded and confirmed, not stored: operation records, clocks, UITD status (presence only). */
  unstored: number
}

export interface TranslateContext {
  profile: DeviceProfile
  /** The frame's serial number: with the item's place in the frame it makes the item's `seq`, so a resent frame is deduplicated. */
  serial: number
  /** Server receive time (epoch ms). */
  rx: number
  /** The time zone of the UITD's clock, minutes east of UTC. */
  utcOffsetMin: number
}

/** How far a device clock may be off before its time is not used (normalize's limits: 24 h ahead, a year back). */
const AHEAD_MS = 24 * 3600 * 1000
const BEHIND_MS = 365 * 24 * 3600 * 1000

export function translate(data: AppData, ctx: TranslateContext): FrameContent {
  const out: FrameContent = { events: [], readings: [], refused: [], unstored: 0 }
  // The ingest log takes two items of a device with the same seq and ts for one resent, and a UITD's time has whole
  // seconds: two events of one status word share a ts, and a UITD that reconnects may count its serial from 1 again.
  // So an item's seq is its place — serial × 4096 + its index in the frame (≤ 170 objects, each ≤ 10 events) — above
  // 20 bits of a hash of its content: the same for a resent frame, different for different news at the same serial.
  let place = 0
  const withSeq = <T extends object>(item: T): T & { seq: number } => {
    const hash = createHash('sha1').update(JSON.stringify(item)).digest().readUIntBE(0, 3) & 0xfffff
    return { ...item, seq: (ctx.serial * 4096 + place++) * 2 ** 20 + hash }
  }
  // A clock that is unset, in BCD or far off gives no ts: the item takes the receive time. A fire is never refused
  // for its device's clock; without a ts, a resend is recognised by its whole content instead.
  const tsOf = (t: FrameTime) => {
    const ts = epochOf(t, ctx.utcOffsetMin)
    return ts !== null && ts <= ctx.rx + AHEAD_MS && ts >= ctx.rx - BEHIND_MS ? { ts } : {}
  }
  switch (data.type) {
    case 1:
      data.objects.forEach((o: SystemStatus) => {
        for (const type of eventTypes(o.status, SYSTEM_BITS)) {
          out.events.push(withSeq({ ...tsOf(o.time), type, point: `${o.sysType}-${o.sysAddr}` }))
        }
      })
      break
    case 2:
      data.objects.forEach((o: ComponentStatus) => {
        const point = `${o.sysType}-${o.sysAddr}-${o.compType}-${o.compAddr}`
        for (const type of eventTypes(o.status, COMPONENT_BITS)) {
          out.events.push(withSeq({ ...tsOf(o.time), type, point, ...(o.description ? { text: o.description } : {}) }))
        }
      })
      break
    case 3:
      data.objects.forEach((o: AnalogValue) => {
        const map = ANALOG_METRICS[o.analogType]
        const where = `component ${o.sysType}-${o.sysAddr}-${o.compType}-${o.compAddr}`
        if (!map) {
          out.refused.push({ reason: 'unknown_analog_type', detail: `${where}: analog type ${o.analogType} maps to no metric` })
        } else if (!Object.hasOwn(ctx.profile.metrics, map.metric)) {
          out.refused.push({ reason: 'unknown_metric', detail: `${where}: ${map.metric} is not a metric of profile ${ctx.profile.name}` })
        } else {
          // Rounded to the type's resolution: 3 × 0.1 must read 0.3, not 0.30000000000000004.
          const value = Number((o.raw * map.scale).toFixed(4))
          out.readings.push(withSeq({ ...tsOf(o.time), values: { [map.metric]: value } }))
        }
      })
      break
    default:
      out.unstored += data.objects.length
  }
  return out
}

/**
 * One event per type a status word raises; several bits of one type (main and backup power) make one event. A status
 * with none of the mapped bits is the point back to normal: a `restore`.
 */
function eventTypes(status: number, bits: [number, EventType][]): EventType[] {
  const types = new Set<EventType>()
  for (const [bit, type] of bits) if (status & (1 << bit)) types.add(type)
  if (types.size === 0) types.add('restore')
  return [...types]
}
