/** Command-line plumbing shared by the simulators: the common flags, argument checks, signals, the entry-point test. */
import { realpathSync } from 'node:fs'
import { randomInt } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError, Option } from 'commander'
import type { SimulatorHandle, SimulatorOptions } from './device-runner.js'

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'

/** True when this module is the script node/tsx was started with (not imported by a test or a benchmark). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl))
  } catch {
    return false
  }
}

/** A commander parser for an integer in [min, max]. */
export function intArg(min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw)
    if (!/^-?\d+$/.test(raw.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`)
    return n
  }
}

/** A device simulator's program with the common flags. */
export function deviceProgram(name: string, description: string, scenarios: readonly string[], defaultScenario: string): Command {
  return new Command(name)
    .description(description)
    .option('--url <url>', 'MQTT broker URL', DEFAULT_URL)
    .requiredOption('--id <deviceId>', 'device id (also the MQTT client id and username)')
    .addOption(
      new Option('--secret <secret>', 'device secret from provisioning').env('FIREWATCH_DEVICE_SECRET').makeOptionMandatory()
    )
    .option('--interval <ms>', 'milliseconds between steps (one telemetry message each)', intArg(10, 86_400_000), 1000)
    .option('--duration <s>', 'seconds to run; 0 runs until Ctrl-C', intArg(0, 31_536_000), 0)
    .addOption(new Option('--scenario <name>', 'what happens').choices(scenarios).default(defaultScenario))
    .option('--seed <n>', 'seed for reproducible values and events (default: random, printed)', intArg(0, 2 ** 32 - 1))
    .option('--quiet', 'no line per publish')
}

/** Stop on the first SIGINT/SIGTERM; a second one exits at once. */
export function onSignals(stop: () => Promise<unknown>): void {
  let stopping = false
  const handler = () => {
    if (stopping) process.exit(130)
    stopping = true
    void stop()
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}

/** Parse argv, start the simulator, stop it on a signal; exit status 1 with a message when it cannot run. */
export async function runDeviceCli<S extends string>(
  program: Command,
  argv: string[],
  start: (opts: SimulatorOptions<S>) => Promise<SimulatorHandle>
): Promise<void> {
  program.parse(argv)
  const o = program.opts<{
    url: string
    id: string
    secret: string
    interval: number
    duration: number
    scenario: S
    seed?: number
    quiet?: boolean
  }>()
  const seed = o.seed ?? randomInt(2 ** 32 - 1)
  const quiet = o.quiet === true
  if (!quiet) {
    const until = o.duration > 0 ? `for ${o.duration} s` : 'until Ctrl-C'
    console.log(`${program.name()} ${o.id}: scenario ${o.scenario}, seed ${seed}, every ${o.interval} ms ${until}, broker ${o.url}`)
  }
  try {
    const handle = await start({ url: o.url, id: o.id, secret: o.secret, intervalMs: o.interval, durationS: o.duration, scenario: o.scenario, seed, quiet })
    onSignals(() => handle.stop())
    const stats = await handle.done
    if (!quiet) console.log(`${o.id}: ${stats.steps} steps, ${stats.published} messages, ${stats.acked} acknowledged, ${stats.failed} failed`)
    if (stats.failed > 0) process.exitCode = 1
  } catch (err) {
    console.error(`${program.name()}: ${(err as Error).message}`)
    process.exitCode = 1
  }
}
