/**
 * Every simulated device of `npm run demo`, in this one process (sixty tsx processes would swamp a small machine).
 *
 *   node --import tsx scripts/demo-devices.ts CREDENTIALS.json
 *
 * The credentials file is written by scripts/demo/devices.ts (mode 0600, in a private temp dir): the broker URL, the step
 * interval, a seed and `{ id, kind, secret, scenario }` per device. This process deletes it once read. Panels, smoke detectors and sprinkler-pressure
 * transmitters run the simulators' own behaviours (simulators/); user information transmission devices (UITD) and
 * water-level sensors, which have no MQTT simulator of their own, run the small behaviours below.
 * When the credentials carry `modbus`, this process also runs the demo's simulated Modbus TCP gateways
 * (scripts/demo-modbus.ts, simulators/modbus-slaves.ts), started before the MQTT devices, and applies the control lines
 * appended to `modbus.controlFile` (`fault <device|all> …`, `scenario <device> <name>`), answering in its log.
 * When they carry `gb26875`, it also runs the demo's UITDs over GB/T 26875.3 (scripts/demo-gb26875.ts) against the
 * server's gateway: heartbeats, and their panels' news as status frames, each waiting for the center's confirm.
 * SIGINT or SIGTERM stops every device cleanly (each MQTT device says `offline` and disconnects, each UITD closes its
 * connection), then the process exits.
 */
import { closeSync, openSync, readFileSync, readSync, rmSync, statSync, unwatchFile, watchFile, writeFileSync } from 'node:fs'
import { runPanel } from '../simulators/panel.js'
import { runSmokeDetector } from '../simulators/smoke-detector.js'
import { runSprinklerPressure } from '../simulators/sprinkler-pressure.js'
import { runDevice, type DeviceRunOptions, type SimulatorHandle } from '../simulators/lib/device-runner.js'
import { batteryPct, daily, lowBatteryEvents, round, type Behaviour } from '../simulators/lib/behaviour.js'
import { hash, signed, unit } from '../simulators/lib/random.js'
import { PANEL_SCENARIOS, panelBehaviour, type PanelScenario } from '../simulators/scenarios/panel.js'
import { SMOKE_SCENARIOS, type SmokeScenario } from '../simulators/scenarios/smoke-detector.js'
import { SPRINKLER_SCENARIOS, type SprinklerScenario } from '../simulators/scenarios/sprinkler-pressure.js'
import { control, startModbusGateway, type ModbusGatewayHandle, type SlaveSpec } from '../simulators/modbus-slaves.js'
import { resolveControl, type DemoModbusRun } from './demo-modbus.js'
import { runDemoUitd, type DemoGb26875Run, type DemoUitdHandle } from './demo-gb26875.js'

export interface DemoCredentials {
  mqttUrl: string
  intervalMs: number
  seed: number
  devices: { id: string; kind: string; secret: string; scenario: string }[]
  /** The simulated Modbus gateways to run, if any. */
  modbus?: DemoModbusRun
  /** The UITDs over GB/T 26875.3 to run, if any. */
  gb26875?: DemoGb26875Run
}

/**
 * A UITD relays its panel's events and reports its own health: a 12 V backup battery (half the panel's 24 V one,
 * so a panel power fault sags it under the uitd profile's 10.8 V too) and its cellular signal.
 */
export function uitdBehaviour(scenario: PanelScenario, seed: number): Behaviour {
  const panel = panelBehaviour(scenario, seed)
  const site = -95 + 20 * unit(seed, 'site')
  return (k) => {
    const { values, events } = panel(k)
    return {
      values: {
        backup_battery_v: round((values.backup_battery_v ?? 27.3) / 2, 2),
        signal_dbm: Math.round(site + 3 * signed(seed, k, 'rsrp'))
      },
      events
    }
  }
}

export const WATER_LEVEL_SCENARIOS = ['normal', 'low-battery'] as const
export type WaterLevelScenario = (typeof WATER_LEVEL_SCENARIOS)[number]

/** A fire-water tank's level (3–5 m, a slow daily draw and refill), the sensor's battery and the water temperature. */
export function waterLevelBehaviour(scenario: WaterLevelScenario, seed: number): Behaviour {
  const full = 3 + 2 * unit(seed, 'tank')
  const phase = 6 * unit(seed, 'phase')
  const battery =
    scenario === 'low-battery'
      ? (k: number) => round(batteryPct(k, 24, 0.2), 1)
      : (k: number) => round(batteryPct(k, 70 + 30 * unit(seed, 'battery'), 0.0005), 1)
  return (k) => ({
    values: {
      level_m: round(full - 0.08 * (1 + Math.sin((2 * Math.PI * k) / 900 + phase)) + 0.004 * signed(seed, k, 'level'), 3),
      battery_pct: battery(k),
      temperature_c: round(14 + 2 * daily(k, phase) + 0.1 * signed(seed, k, 't'), 1)
    },
    events: lowBatteryEvents(k, battery)
  })
}

function choose<S extends string>(kind: string, scenario: string, known: readonly S[]): S {
  if (!(known as readonly string[]).includes(scenario)) throw new Error(`${kind} has no scenario ${scenario}; known: ${known.join(', ')}`)
  return scenario as S
}

/** Start one device; throws for an unknown kind or scenario, or when the broker refuses the device. */
export function startDevice(kind: string, scenario: string, opts: DeviceRunOptions & { seed: number }): Promise<SimulatorHandle> {
  switch (kind) {
    case 'alarm_panel':
      return runPanel({ ...opts, scenario: choose<PanelScenario>(kind, scenario, PANEL_SCENARIOS) })
    case 'uitd':
      return runDevice(opts, uitdBehaviour(choose<PanelScenario>(kind, scenario, PANEL_SCENARIOS), opts.seed))
    case 'smoke_detector':
      return runSmokeDetector({ ...opts, scenario: choose<SmokeScenario>(kind, scenario, SMOKE_SCENARIOS) })
    case 'sprinkler_pressure':
      return runSprinklerPressure({ ...opts, scenario: choose<SprinklerScenario>(kind, scenario, SPRINKLER_SCENARIOS) })
    case 'water_level':
      return runDevice(opts, waterLevelBehaviour(choose<WaterLevelScenario>(kind, scenario, WATER_LEVEL_SCENARIOS), opts.seed))
    default:
      throw new Error(`no simulator for device kind ${kind}`)
  }
}

const clock = () => new Date().toISOString().slice(11, 23)
const log = (line: string) => console.log(`${clock()} ${line}`)

/** The demo's Modbus gateways, listening once this resolves; throws when one cannot listen. */
async function startModbus(run: DemoModbusRun): Promise<{ gateways: ModbusGatewayHandle[]; stop: () => Promise<void> }> {
  const gateways: ModbusGatewayHandle[] = []
  try {
    for (const g of run.gateways) {
      const slaves = g.devices.map(
        (d) => ({ unitId: d.slave, kind: d.kind === 'water_level' ? 'tank' : 'pressure', scenario: d.scenario, seed: hash(run.seed, d.id) }) as SlaveSpec
      )
      gateways.push(await startModbusGateway({ host: run.host, port: g.port, slaves, stepMs: run.stepMs }))
      const scenarios = g.devices.map((d) => `${d.slave} ${d.id} (${d.scenario})`).join(', ')
      log(`modbus gateway ${run.host}:${g.port}, ${g.name}: unit ids ${scenarios}`)
    }
  } catch (err) {
    await Promise.all(gateways.map((g) => g.close()))
    throw new Error(`cannot start the Modbus gateways: ${(err as Error).message}`)
  }

  // Control: lines appended to the control file (the demo prints how), applied as they arrive.
  writeFileSync(run.controlFile, '', { mode: 0o600 })
  let offset = 0
  let partial = ''
  const readControl = () => {
    let size: number
    try {
      size = statSync(run.controlFile).size
    } catch {
      return
    }
    if (size < offset) offset = 0 // truncated (`>` instead of `>>`): read it again from the start
    if (size === offset) return
    const buf = Buffer.alloc(size - offset)
    const fd = openSync(run.controlFile, 'r')
    try {
      readSync(fd, buf, 0, buf.length, offset)
    } finally {
      closeSync(fd)
    }
    offset = size
    const lines = (partial + buf.toString('utf8')).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() === '') continue
      const r = resolveControl(line, run)
      if ('error' in r) {
        log(`modbus control "${line.trim()}": ${r.error}`)
        continue
      }
      log(`modbus control "${line.trim()}": ${control(r.line, r.gateways.map((i) => gateways[i]!))}`)
    }
  }
  watchFile(run.controlFile, { interval: 300 }, readControl)
  return {
    gateways,
    stop: async () => {
      unwatchFile(run.controlFile)
      await Promise.all(gateways.map((g) => g.close()))
    }
  }
}

async function main(): Promise<void> {
  const file = process.argv[2]
  if (!file) {
    console.error('usage: demo-devices.ts CREDENTIALS.json')
    process.exit(2)
  }
  const creds = JSON.parse(readFileSync(file, 'utf8')) as DemoCredentials
  // A one-time hand-over: the secrets now live only in this process.
  rmSync(file, { force: true })
  const handles: SimulatorHandle[] = []
  const uitds: DemoUitdHandle[] = []
  // The UITDs, not counted in the MQTT devices' messages: frames over GB/T 26875.3, each confirmed or not.
  const uitdLine = () => {
    const f = (k: keyof DemoUitdHandle['stats']) => uitds.reduce((a, u) => a + u.stats[k], 0)
    return `${uitds.length} UITDs over GB/T 26875.3: ${f('frames')} frames sent, ${f('confirmed')} confirmed, ${f('denied')} denied, ${f('unanswered')} unanswered`
  }
  let stopping = false
  let failedToStart = 0
  let modbus: Awaited<ReturnType<typeof startModbus>> | null = null

  const stopAll = async (why: string) => {
    if (stopping) return
    stopping = true
    log(`${why}: stopping ${handles.length} devices${uitds.length ? ` and ${uitds.length} UITDs` : ''}`)
    const stats = await Promise.all(handles.map((h) => h.stop().catch(() => h.stats)))
    const sum = (f: (s: (typeof stats)[number]) => number) => stats.reduce((a, s) => a + f(s), 0)
    log(`stopped: ${sum((s) => s.published)} messages published, ${sum((s) => s.acked)} acknowledged, ${sum((s) => s.failed)} failed`)
    if (creds.gb26875) {
      await Promise.all(uitds.map((u) => u.stop()))
      log(`stopped ${uitdLine()}`)
    }
    if (modbus) {
      await modbus.stop().catch(() => undefined)
      log('modbus gateways closed')
    }
    process.exit(0)
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(130)
      void stopAll(signal)
    })
  }

  if (creds.modbus) {
    // First, so that the demo can register the Modbus devices while the MQTT ones connect.
    try {
      modbus = await startModbus(creds.modbus)
      log(`${modbus.gateways.length} modbus gateways listening; control: append lines to ${creds.modbus.controlFile}`)
    } catch (err) {
      console.error(`${clock()} ${(err as Error).message}`)
    }
    if (stopping) return
  }
  const gb = creds.gb26875
  const startUitds = gb
    ? Promise.all(
        gb.uitds.map(async (u, i) => {
          await new Promise((resolve) => setTimeout(resolve, (i * Math.max(gb.intervalMs, 3000)) / gb.uitds.length))
          if (stopping) return
          try {
            const quiet = u.scenario === 'quiet'
            const handle = await runDemoUitd(gb, u, hash(gb.seed, u.id), log, quiet)
            uitds.push(handle)
            log(`${u.id}: UITD ${u.address} over GB/T 26875.3 to ${gb.host}:${gb.port}, scenario ${u.scenario}`)
            if (stopping) await handle.stop()
          } catch (err) {
            console.error(`${clock()} ${u.id}: cannot connect to the GB/T 26875.3 gateway: ${(err as Error).message}`)
          }
        })
      )
    : Promise.resolve([])
  log(`${creds.devices.length} devices, broker ${creds.mqttUrl}, one step every ${creds.intervalMs} ms, seed ${creds.seed}`)
  // Spread the first connections (each costs the server a password hash) and the devices' phases over the interval.
  const spreadMs = Math.max(creds.intervalMs, 3000) / creds.devices.length
  await Promise.all(
    creds.devices.map(async (d, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * spreadMs))
      if (stopping) return
      const normal = ['quiet', 'normal'].includes(d.scenario)
      try {
        const handle = await startDevice(d.kind, d.scenario, {
          url: creds.mqttUrl,
          id: d.id,
          secret: d.secret,
          intervalMs: creds.intervalMs,
          durationS: 0,
          seed: hash(creds.seed, d.id),
          // The devices running a scenario print a line per publish; the others stay quiet.
          quiet: normal
        })
        handles.push(handle)
        if (!normal) log(`${d.id}: ${d.kind}, scenario ${d.scenario}`)
        handle.done.catch((err: Error) => log(`${d.id} stopped: ${err.message}`))
        if (stopping) await handle.stop()
      } catch (err) {
        failedToStart++
        console.error(`${clock()} ${d.id}: ${(err as Error).message}`)
      }
    })
  )
  await startUitds
  if (stopping) return
  log(`${handles.length} devices running${failedToStart ? `, ${failedToStart} failed to start` : ''}`)
  if (gb) log(`${uitds.length}/${gb.uitds.length} UITDs over GB/T 26875.3 running`)
  if (handles.length === 0) {
    console.error('no device could start')
    process.exit(1)
  }

  // A line a minute, so the log shows the devices are alive.
  setInterval(() => {
    const s = handles.reduce(
      (a, h) => ({ published: a.published + h.stats.published, acked: a.acked + h.stats.acked, failed: a.failed + h.stats.failed }),
      { published: 0, acked: 0, failed: 0 }
    )
    log(`${handles.length} devices: ${s.published} messages published, ${s.acked} acknowledged, ${s.failed} failed`)
    if (gb) log(uitdLine())
  }, 60_000)
}

main().catch((err) => {
  console.error(`demo-devices: ${(err as Error).message}`)
  process.exit(1)
})
