/**
 * `npm run bench`: how much of a bare aedes broker's QoS 1 throughput Firewatch keeps end to end, what an idle
 * device connection costs in resident memory, how many Modbus slaves the pollers keep on a 1 s schedule, and how fast
 * a fire event becomes an alert (row and live message) under background load. Method and results: docs/BENCHMARKS.md.
 *
 *   tsx bench/index.ts [--quick] [--only throughput|memory|polling|alerts] [--profile]
 *                      [--clients N] [--window N] [--messages N] [--rounds N] [--poll-ms N] [--warmup N]
 *                      [--devices N] [--malloc-default]
 *                      [--bg-rate N] [--bg-devices N] [--fires N]
 *
 * Both servers run as child processes (compiled with tsc, plain node), so neither shares an event loop with the
 * publishers. Traffic goes only to 127.0.0.1. Progress goes to stderr; stdout gets the summary table and one JSON line.
 * This file reads the options and runs the phases in order; each phase and the report live in bench/lib/.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { alertsPhase, type AlertsResult } from './lib/alerts.js'
import { buildServers, isCompiled } from './lib/child.js'
import { cleanUpOnStop, createCleanup } from './lib/cleanup.js'
import { memoryPhase, type MemoryPhaseResult } from './lib/memory.js'
import { pollingPhase, type PollingResult } from './lib/polling.js'
import { progress } from './lib/progress.js'
import { formatReport } from './lib/report.js'
import { throughputPhase, type ThroughputResult } from './lib/throughput.js'
import { versions } from './lib/versions.js'

// --- options ---------------------------------------------------------------------------------------------------
const int = (min: number) => (raw: string) => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`)
  return n
}
const cli = new Command('bench')
  .description('Firewatch benchmarks: raw aedes vs end-to-end QoS 1 throughput, idle-connection memory, Modbus polling, fire alert latency')
  .option('--quick', 'a shorter run (fewer messages, rounds and devices)', false)
  .addOption(new Option('--only <phase>', 'run one phase').choices(['throughput', 'memory', 'polling', 'alerts']))
  .option(
    '--profile',
    'add a CPU-profiled round of each server and keep the profiles (done anyway when the ratio misses the target); alerts phase: profile its measured window',
    false
  )
  .option('--clients <n>', 'publisher clients', int(1))
  .option('--window <n>', 'unacknowledged QoS 1 messages per client', int(1))
  .option('--messages <n>', 'messages per measured round (over all clients)', int(100))
  .option('--rounds <n>', 'measured rounds (raw aedes and Firewatch alternate)', int(1))
  .option('--poll-ms <n>', 'throughput: how often InfluxDB is counted once the last PUBACK is in (100 = the method before 2026-12-07)', int(1), 5)
  .option('--warmup <n>', "throughput: warm-up messages to each server (default: one round's worth)", int(0))
  .option('--devices <n>', 'idle devices in the memory phase', int(20))
  .option('--malloc-default', "memory phase: leave glibc's dynamic mmap threshold on (see docs/BENCHMARKS.md)", false)
  .option('--bg-rate <n>', 'alerts phase: background readings per second, all devices together', int(1), 5_000)
  .option('--bg-devices <n>', 'alerts phase: background sprinkler_pressure devices', int(1))
  .option('--fires <n>', 'alerts phase: fire events over the measured period', int(1))
  .parse()
const o = cli.opts<{
  quick: boolean
  only?: 'throughput' | 'memory' | 'polling' | 'alerts'
  profile: boolean
  clients?: number
  window?: number
  messages?: number
  rounds?: number
  pollMs: number
  warmup?: number
  devices?: number
  mallocDefault: boolean
  bgRate: number
  bgDevices?: number
  fires?: number
}>()
const connectTimeoutMs = 180_000
const throughputOpts = {
  clients: o.clients ?? (o.quick ? 10 : 20),
  window: o.window ?? 20,
  messages: o.messages ?? (o.quick ? 6_000 : 20_000),
  // One round's worth to each server first: with 4,000, raw aedes' first two or three rounds still ran at ~2/3 of its
  // later rate (p50 ack 13 ms against 8), which flattered the ratio of those rounds.
  warmup: o.warmup ?? o.messages ?? (o.quick ? 6_000 : 20_000),
  storedPollMs: o.pollMs,
  // Short rounds, many of them, raw aedes and Firewatch back to back: the machine is shared, and the median of
  // per-round ratios shrugs off a round another process disturbed.
  rounds: o.rounds ?? (o.quick ? 3 : 7),
  roundTimeoutMs: 90_000,
  storeTimeoutMs: 60_000,
  connectTimeoutMs,
  profile: o.profile
}
const memoryOpts = {
  devices: o.devices ?? (o.quick ? 200 : 1_000),
  warmDevices: 16,
  connectTimeoutMs,
  mallocDefault: o.mallocDefault
}
const pollingOpts = o.quick
  ? { steps: [100, 500], warmupMs: 3000, measureMs: 5000 }
  : { steps: [100, 250, 500, 750, 1000], warmupMs: 3000, measureMs: 8000 }

// 20 panels, a unit each; fire events at random times over the measured period (~3 a second), each restored 1–3 s later.
// 100 background devices at 50 readings/s each: their first logins (one scrypt each on the server) take ~13 s.
const alertsOpts = {
  bgRate: o.bgRate,
  bgDevices: o.bgDevices ?? 100,
  panels: 20,
  fires: o.fires ?? (o.quick ? 100 : 200),
  measureMs: o.quick ? 30_000 : 60_000,
  warmupMs: 5_000,
  settleMs: 10_000,
  connectTimeoutMs: 60_000,
  seed: 1,
  profile: o.profile
}

const cleanup = createCleanup(o.profile)
cleanUpOnStop(cleanup, o.quick ? 5 : 10)

// --- phases, in order ------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  const started = Date.now()
  const date = new Date().toISOString()
  const versionInfo = versions()
  let serverRuntime: string | undefined
  let throughput: ThroughputResult | null = null
  let memory: MemoryPhaseResult | null = null
  let polling: PollingResult | null = null
  let alerts: AlertsResult | null = null
  try {
    if (!o.only || o.only !== 'polling') {
      progress('compiling the servers (tsc, bench/tsconfig.servers.json)')
      await buildServers()
      serverRuntime = isCompiled() ? 'node, tsc-compiled' : 'node --import tsx'
    }
    if (!o.only || o.only === 'throughput') throughput = await throughputPhase(throughputOpts, cleanup)
    if (!o.only || o.only === 'memory') memory = await memoryPhase(memoryOpts, cleanup)
    if (!o.only || o.only === 'polling') polling = await pollingPhase(pollingOpts)
    if (!o.only || o.only === 'alerts') alerts = await alertsPhase(alertsOpts, cleanup)
  } finally {
    await cleanup.run()
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  // Key order is the JSON line's field order.
  const result = { date, quick: o.quick, versions: versionInfo, ...(serverRuntime ? { serverRuntime } : {}), throughput, memory, polling, alerts, seconds }
  process.stdout.write(formatReport(result, memoryOpts.warmDevices))
  progress(`done in ${seconds} s`)
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err)
    await cleanup.run().catch(() => undefined)
    process.exit(1)
  }
)
