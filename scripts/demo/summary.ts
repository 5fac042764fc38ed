/**
 * What arrived, once the demo stops: readings of the leaking sprinkler-pressure transmitter (over MQTT and over
 * Modbus), events of the panel that sees a fire, and what the UITDs over GB/T 26875.3 got stored. With --duration,
 * none arriving fails the demo.
 */
import { INTERESTING } from '../demo-city.js'
import { PANEL_TIMELINE } from '../../simulators/scenarios/panel.js'
import { modbusLeak } from '../demo-modbus.js'
import { Api } from './api.js'
import { DemoError } from './errors.js'
import { step, warn } from './output.js'
import type { Provisioned } from './provision.js'
import type { RunFolder } from './run-folder.js'
import { readStatus } from './server.js'

type Readings = { points: { ts: number; values: Record<string, number | null> }[] }

interface SummaryInput {
  durationS: number | null
  base: string
  token: string
  simulated: Provisioned['simulated']
  uitds: Provisioned['uitds']
  /** The simulated devices' step. */
  intervalMs: number
  /** Whether the Modbus devices were registered. */
  modbus: boolean
  folder: RunFolder
  /** When the run began: readings from two minutes before it count. */
  started: number
}

export async function reportArrived(p: SummaryInput): Promise<void> {
  const { durationS, folder } = p
  const leak = p.simulated.find((d) => INTERESTING[d.id]?.scenario === 'slow-leak') ?? p.simulated[0]!
  const fire = p.simulated.find((d) => INTERESTING[d.id]?.scenario === 'fire') ?? p.simulated[0]!
  const since = new Date(p.started - 120_000).toISOString()
  const check = new Api(p.base, p.token, AbortSignal.timeout(20_000))
  const readingsOf = (id: string) => check.call<Readings>('GET', `/api/v1/devices/${id}/readings?from=${encodeURIComponent(since)}&limit=10000`)
  try {
    const readings = await readingsOf(leak.id)
    const events = await check.call<{ events: { type: string }[] }>('GET', `/api/v1/devices/${fire.id}/events?from=${encodeURIComponent(since)}`)
    const lastPoint = readings.points.at(-1)
    const types = [...new Set(events.events.map((e) => e.type))].join(', ')
    step(
      'arrived',
      `${readings.points.length} readings of ${leak.id}${lastPoint ? ` (last pressure_mpa ${lastPoint.values.pressure_mpa})` : ''}, ${events.events.length} events of ${fire.id}${types ? ` (${types})` : ''}`
    )
    let modbusCount: number | null = null
    const leakMb = modbusLeak()
    if (p.modbus) {
      const mb = await readingsOf(leakMb.id)
      modbusCount = mb.points.length
      const last = mb.points.at(-1)
      step(
        '',
        `${mb.points.length} readings of ${leakMb.id} polled over Modbus every ${leakMb.pollIntervalMs / 1000} s${last ? ` (last pressure_mpa ${last.values.pressure_mpa})` : ''}`
      )
    }
    const uitdEvents = await reportUitds(p, check, since)
    // The devices still publish: give the writer a moment to store what was accepted up to now before counting.
    let ready = await readStatus(p.base)
    const accepted = ready?.status.accepted ?? null
    for (let i = 0; i < 30 && ready && accepted !== null && (ready.status.written ?? 0) < accepted; i++) {
      await new Promise((r) => setTimeout(r, 100))
      ready = (await readStatus(p.base)) ?? ready
    }
    const written = ready?.status.written ?? null
    // The server's counts: MQTT messages, Modbus polls and the UITDs' stored frames alike (heartbeats store nothing).
    const sources = 'over MQTT, Modbus and GB/T 26875.3'
    if (ready && accepted !== null && written !== null && written >= accepted) step('', `${accepted} messages accepted ${sources}, all written to InfluxDB (${written} by now)`)
    else if (ready) step('', `${accepted ?? '?'} messages accepted ${sources}, ${written ?? '?'} written to InfluxDB`)
    if (readings.points.length === 0) {
      if (durationS !== null) {
        throw new DemoError(`no readings of ${leak.id} arrived in ${durationS} s`, { file: folder.devicesLog, title: 'devices log' })
      }
      warn(`no readings of ${leak.id} arrived yet; see ${folder.devicesLog} and ${folder.serverLog}`)
    }
    if (modbusCount === 0) {
      if (durationS !== null) {
        throw new DemoError(`no readings of ${leakMb.id} were polled over Modbus in ${durationS} s`, { file: folder.serverLog, title: 'server log' })
      }
      warn(`no readings of ${leakMb.id} were polled over Modbus yet; see ${folder.serverLog} and ${folder.devicesLog}`)
    }
    // A UITD's first news comes at the panels' step 2 (PANEL_TIMELINE): expect it only once a few steps went by.
    const stepsRun = durationS === null ? 0 : (durationS * 1000) / p.intervalMs
    if (uitdEvents === 0 && p.uitds.some((u) => u.scenario === 'fire' || u.scenario === 'fault')) {
      if (durationS !== null && stepsRun >= PANEL_TIMELINE.fire.alarm + 3) {
        throw new DemoError(`no events of the UITDs over GB/T 26875.3 were stored in ${durationS} s`, { file: folder.devicesLog, title: 'devices log' })
      }
      warn(`no events of the UITDs over GB/T 26875.3 stored yet; see ${folder.devicesLog} and ${folder.serverLog}`)
    }
  } catch (err) {
    if (err instanceof DemoError && durationS !== null) throw err
    warn(`could not read back what arrived: ${(err as Error).message}`)
  }
}

/** One line on the UITDs over GB/T 26875.3: seen, online, and the events stored since `since`. Returns how many. */
async function reportUitds(p: SummaryInput, check: Api, since: string): Promise<number> {
  if (p.uitds.length === 0) return 0
  let seen = 0
  let online = 0
  let total = 0
  const byUitd: string[] = []
  for (const u of p.uitds) {
    const device = await check.call<{ online: boolean; lastSeenAt: string | null }>('GET', `/api/v1/devices/${u.id}`)
    if (device.lastSeenAt) seen++
    if (device.online) online++
    const events = await check.call<{ events: { type: string }[] }>('GET', `/api/v1/devices/${u.id}/events?from=${encodeURIComponent(since)}`)
    total += events.events.length
    if (events.events.length > 0) byUitd.push(`${u.id}: ${events.events.map((e) => e.type).join(', ')}`)
  }
  step(
    '',
    `${p.uitds.length} UITDs over GB/T 26875.3: ${seen} seen, ${online} online; ${total} events stored${byUitd.length ? ` (${byUitd.join('; ')})` : ''}`
  )
  if (seen === 0) {
    if (p.durationS !== null) throw new DemoError(`no UITD over GB/T 26875.3 was heard from in ${p.durationS} s`, { file: p.folder.devicesLog, title: 'devices log' })
    warn(`no UITD over GB/T 26875.3 was heard from yet; see ${p.folder.devicesLog} and ${p.folder.serverLog}`)
  }
  return total
}
