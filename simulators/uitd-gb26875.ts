/**
 * UITD simulator over GB/T 26875.3-2011 TCP (profile `uitd`, a device registered with protocol gb26875 and its address).
 *   npx tsx simulators/uitd-gb26875.ts --port 9002 --address 0a0b0c0d0e0f --scenario demo
 * Heartbeats (an empty send-data frame) every interval, and the scenario's frames in between; each frame waits for
 * the center's confirm (or deny) and prints it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Command as Program, InvalidArgumentError, Option } from 'commander'
import { intArg, isMain, onSignals } from './lib/cli.js'
import { UitdClient } from './lib/gb26875-client.js'
import { Command, timeAt, type AppData } from '../src/ingest/gb26875/index.js'

export const UITD_SCENARIOS = ['quiet', 'fire', 'fault', 'pressure', 'demo'] as const
export type UitdScenario = (typeof UITD_SCENARIOS)[number]

export interface UitdSimulatorOptions {
  host: string
  port: number
  address: string
  center?: string
  scenario: UitdScenario
  /** Milliseconds between frames. */
  intervalMs: number
  /** Seconds to run; 0 runs until stopped. */
  durationS: number
  /** The pressure the analog frames report, MPa (sent in the standard's 0.1 kPa unit). */
  pressureMpa: number
  quiet?: boolean
}

export interface UitdSimulatorHandle {
  readonly stats: { confirmed: number; denied: number; unanswered: number }
  /** Resolves when the run ends (duration over, or stopped). */
  readonly done: Promise<void>
  stop(): Promise<void>
}

// Component status bits, GB/T 26875.3-2011: bit 0 normal operation, 1 fire, 2 fault.
const NORMAL = 0b1
const FIRE = 0b11
const FAULT = 0b101
// System type 1: fire alarm system; component type 42: photoelectric smoke detector (GB/T 26875.3-2011 type tables).
const SMOKE = { sysType: 1, sysAddr: 1, compType: 42, compAddr: 0x0002_0015 }
// System type 12: sprinkler; component type 99: pressure switch; analog type 5: pressure in 0.1 kPa (GB/T 26875.3-2011 analog types).
const PIPE = { sysType: 12, sysAddr: 1, compType: 99, compAddr: 1 }

/** What the scenario sends at step `k` (0-based); null: a heartbeat. */
function stepOf(scenario: UitdScenario, k: number, pressureMpa: number): { label: string; data: AppData } | null {
  const now = timeAt(Date.now(), 480)
  const component = (status: number, description: string): AppData => ({ type: 2, objects: [{ ...SMOKE, status, description, time: now }] })
  const pressure = (): AppData => ({ type: 3, objects: [{ ...PIPE, analogType: 5, raw: Math.round(pressureMpa * 10_000), time: now }] })
  const plan: Record<UitdScenario, (string | null)[]> = {
    quiet: [],
    fire: [null, 'fire'],
    fault: [null, 'fault', null, null, 'restore'],
    pressure: [null, 'pressure'],
    demo: [null, 'pressure', 'fire', 'fault', 'restore']
  }
  const steps = plan[scenario]
  // After its timeline a scenario keeps sending heartbeats, and a pressure every fifth step where it reports one.
  const name = k < steps.length ? steps[k] : (scenario === 'pressure' || scenario === 'demo') && k % 5 === 0 ? 'pressure' : null
  if (name === 'fire') return { label: 'fire at 1-1-42-131093', data: component(FIRE, '三层东侧走廊烟感') }
  if (name === 'fault') return { label: 'fault at 1-1-42-131093', data: component(FAULT, '三层东侧走廊烟感') }
  if (name === 'restore') return { label: 'normal at 1-1-42-131093', data: component(NORMAL, '三层东侧走廊烟感') }
  if (name === 'pressure') return { label: `pressure ${pressureMpa} MPa at 12-1-99-1`, data: pressure() }
  return null
}

export async function runUitd(opts: UitdSimulatorOptions): Promise<UitdSimulatorHandle> {
  const stats = { confirmed: 0, denied: 0, unanswered: 0 }
  let stopped = false
  let client: UitdClient | null = null
  const connect = () => UitdClient.connect({ host: opts.host, port: opts.port, address: opts.address, center: opts.center })
  client = await connect()
  const print = (line: string) => {
    if (!opts.quiet) console.log(line)
  }
  const until = opts.durationS > 0 ? Date.now() + opts.durationS * 1000 : Infinity
  const done = (async () => {
    for (let k = 0; !stopped && Date.now() < until; k++) {
      const step = stepOf(opts.scenario, k, opts.pressureMpa)
      const answer = step ? await client.sendData(step.data) : await client.heartbeat()
      const what = step?.label ?? 'heartbeat'
      if (!answer) {
        if (stopped) break // stop() closed the connection under this frame
        stats.unanswered++
        print(`${what}: no answer`)
        // The center closes a connection after a frame it could not store: connect again, as a UITD does.
        if (client.socket.destroyed || client.socket.readableEnded) {
          client.close()
          while (!stopped) {
            try {
              client = await connect()
              break
            } catch {
              await sleep(1000)
            }
          }
        }
      } else if (answer.command === Command.confirm) {
        stats.confirmed++
        print(`${what}: confirmed (serial ${answer.serial})`)
      } else {
        stats.denied++
        print(`${what}: denied (serial ${answer.serial})`)
      }
      if (!stopped) await sleep(opts.intervalMs)
    }
    client.close()
  })()
  return {
    stats,
    done,
    async stop() {
      stopped = true
      client?.close()
      await done.catch(() => undefined)
    }
  }
}

const address = (raw: string): string => {
  if (!/^[0-9A-Fa-f]{12}$/.test(raw)) throw new InvalidArgumentError('expected 12 hex digits (the 6 address bytes in wire order)')
  return raw.toLowerCase()
}

if (isMain(import.meta.url)) {
  const program = new Program('uitd-gb26875')
    .description('UITD over GB/T 26875.3 TCP: heartbeats, a fire in a component, a fault, an analog pressure')
    .option('--host <host>', 'Firewatch host', '127.0.0.1')
    .requiredOption('--port <port>', 'GB26875_PORT of the server', intArg(1, 65535))
    .requiredOption('--address <hex>', "this UITD's address, as registered (gb26875.address)", address)
    .option('--center <hex>', "the center's address (destination of the frames)", address, '000000000000')
    .option('--interval <ms>', 'milliseconds between frames (field UITDs: a heartbeat every 20-30 s)', intArg(10, 86_400_000), 5000)
    .option('--duration <s>', 'seconds to run; 0 runs until Ctrl-C', intArg(0, 31_536_000), 0)
    .addOption(
      new Option('--scenario <name>', 'quiet: heartbeats only; fire; fault (then back to normal); pressure; demo: all of them in turn')
        .choices(UITD_SCENARIOS)
        .default('demo')
    )
    .option('--pressure <MPa>', 'pressure the analog frames report', (raw) => {
      const n = Number(raw)
      if (!Number.isFinite(n) || n < -0.1 || n > 2.5) throw new InvalidArgumentError('expected MPa from -0.1 to 2.5')
      return n
    }, 0.32)
    .option('--quiet', 'no line per frame')
  program.parse(process.argv)
  const o = program.opts<{ host: string; port: number; address: string; center: string; interval: number; duration: number; scenario: UitdScenario; pressure: number; quiet?: boolean }>()
  try {
    const handle = await runUitd({
      host: o.host,
      port: o.port,
      address: o.address,
      center: o.center,
      scenario: o.scenario,
      intervalMs: o.interval,
      durationS: o.duration,
      pressureMpa: o.pressure,
      quiet: o.quiet
    })
    onSignals(() => handle.stop())
    await handle.done
    console.log(JSON.stringify(handle.stats))
  } catch (err) {
    console.error(`uitd-gb26875: ${(err as Error).message}`)
    process.exit(1)
  }
}
