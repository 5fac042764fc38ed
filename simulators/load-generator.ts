/**
 * Load generator: many sprinkler-pressure devices, one MQTT connection each (as in the field), publishing telemetry
 * at a chosen total rate for a bounded time, then a JSON summary on stdout (progress goes to stderr).
 *   npx tsx simulators/load-generator.ts --devices 500 --rate 2000 --duration 60 --credentials devices.json
 *   npx tsx simulators/load-generator.ts --devices 500 --rate 2000 --duration 60 \
 *     --api http://127.0.0.1:8080 --token $FW_API_KEY --unit unit-1 --save devices.json
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_URL, intArg, isMain, onSignals } from './lib/cli.js'
import { DeviceClient, type DeviceCredentials, type Qos } from './lib/device-client.js'
import { provisionDevices, readCredentials, saveCredentials } from './lib/credentials.js'
import { LatencySample } from './lib/latency.js'
import { mapLimit } from './lib/map-limit.js'
import { hash } from './lib/random.js'
import { sprinklerBehaviour } from './scenarios/sprinkler-pressure.js'
import type { Behaviour } from './lib/behaviour.js'
import { MAX_ITEMS, MAX_PAYLOAD_BYTES } from '../schemas/device-payloads.js'

/** A load run is bounded: an hour at most. */
export const MAX_DURATION_S = 3600
/** A device with this many messages unacknowledged skips its turn rather than queue without bound. */
const MAX_IN_FLIGHT_PER_DEVICE = 100

export interface LoadOptions {
  url: string
  /** sprinkler_pressure devices; one connection each. */
  devices: DeviceCredentials[]
  /** Messages per second, all devices together. */
  rate: number
  /** Seconds of sending, 1 to MAX_DURATION_S. */
  durationS: number
  /** @defaultValue 1 */
  qos?: Qos
  /** Telemetry items per message (an array payload when above 1). @defaultValue 1 */
  batch?: number
  /** Connections opened at a time. @defaultValue 50 */
  connectConcurrency?: number
  /** After sending, how long to wait for outstanding acknowledgements; what is still unacknowledged then failed. @defaultValue 10 */
  drainTimeoutS?: number
  /** @defaultValue 1 */
  seed?: number
  /** Called about once a second. */
  onProgress?: (p: LoadProgress) => void
  /** Aborting ends the sending early; the run still drains, disconnects and resolves its summary. */
  signal?: AbortSignal
}

export interface LoadProgress {
  phase: 'connecting' | 'sending' | 'draining'
  elapsedS: number
  connected: number
  sent: number
  acked: number
  failed: number
  inFlight: number
  /** Turns skipped because the device had MAX_IN_FLIGHT_PER_DEVICE messages unacknowledged. */
  skipped: number
  /** Acknowledged in the last second. */
  ackedPerS: number
}

export interface LoadSummary {
  devices: number
  /** Messages (each of `batch` items). With QoS 0, `acked` counts messages written to the socket: there is no PUBACK. */
  sent: number
  acked: number
  failed: number
  /** From the first publish to the last acknowledgement (or the end of sending, if later). */
  durationS: number
  ackedPerS: number
  p50AckMs: number | null
  p99AckMs: number | null
}

function check(opts: LoadOptions): void {
  const bad = (what: string) => {
    throw new Error(`runLoad: ${what}`)
  }
  if (opts.devices.length === 0) bad('no devices')
  if (!(opts.rate > 0)) bad('rate must be above 0')
  if (!(opts.durationS > 0 && opts.durationS <= MAX_DURATION_S)) bad(`durationS must be in (0, ${MAX_DURATION_S}]`)
  const batch = opts.batch ?? 1
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_ITEMS) bad(`batch must be an integer from 1 to ${MAX_ITEMS}`)
  // Every message would be refused locally: say so once instead of failing each.
  const item = JSON.stringify({ ts: Date.now(), seq: 1e9, values: sprinklerBehaviour('normal', 1)(0).values }) + ','
  const fits = Math.floor(MAX_PAYLOAD_BYTES / Buffer.byteLength(item))
  if (batch > fits) bad(`a batch of ${batch} items makes payloads over the contract's ${MAX_PAYLOAD_BYTES} bytes; use at most ${fits}`)
}

export async function runLoad(opts: LoadOptions): Promise<LoadSummary> {
  check(opts)
  const qos = opts.qos ?? 1
  const batch = opts.batch ?? 1
  const seed = opts.seed ?? 1
  const n = opts.devices.length
  const latency = new LatencySample(seed)
  const progress: LoadProgress = { phase: 'connecting', elapsedS: 0, connected: 0, sent: 0, acked: 0, failed: 0, inFlight: 0, skipped: 0, ackedPerS: 0 }
  const began = performance.now()
  let ackedAtLastReport = 0
  const reporter = setInterval(() => {
    progress.elapsedS = Math.round((performance.now() - began) / 1000)
    progress.ackedPerS = progress.acked - ackedAtLastReport
    ackedAtLastReport = progress.acked
    opts.onProgress?.({ ...progress })
  }, 1000)

  // Indexed like opts.devices, so a seed gives each device the same values whatever the connection order.
  const connecting: (DeviceClient | undefined)[] = new Array(n)
  try {
    await mapLimit(opts.devices, opts.connectConcurrency ?? 50, async (d, i) => {
      if (opts.signal?.aborted) throw new Error('aborted while connecting')
      connecting[i] = await DeviceClient.connect({ url: opts.url, ...d })
      progress.connected++
    })
  } catch (err) {
    clearInterval(reporter)
    await mapLimit(connecting.filter((c) => c !== undefined), 50, (c) => c.close(2000))
    throw err
  }
  const clients = connecting as DeviceClient[]

  const behaviours: Behaviour[] = clients.map((_, i) => sprinklerBehaviour('normal', hash(seed, i)))
  const steps = new Array<number>(n).fill(0)
  const inFlight = new Array<number>(n).fill(0)
  let cursor = 0
  let lastAck = 0

  const send = () => {
    const i = cursor
    cursor = (cursor + 1) % n
    if (inFlight[i]! >= MAX_IN_FLIGHT_PER_DEVICE) {
      progress.skipped++
      return
    }
    const items = Array.from({ length: batch }, () => behaviours[i]!(steps[i]!++).values)
    inFlight[i]!++
    progress.inFlight++
    progress.sent++
    clients[i]!.telemetry(items, qos).then(
      (r) => {
        progress.acked++
        latency.add(r.ackMs)
        lastAck = performance.now()
      },
      () => progress.failed++
    ).finally(() => {
      inFlight[i]!--
      progress.inFlight--
    })
  }

  // Open loop: the messages due by now go out whatever the broker's pace, so a slow broker shows as latency.
  progress.phase = 'sending'
  const start = performance.now()
  const total = Math.round(opts.rate * opts.durationS)
  let offered = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsedS = (performance.now() - start) / 1000
      const due = opts.signal?.aborted ? offered : Math.min(total, Math.floor(opts.rate * elapsedS))
      for (; offered < due; offered++) send()
      if (offered >= total || opts.signal?.aborted || elapsedS >= opts.durationS) resolve()
      else setTimeout(tick, 5)
    }
    tick()
  })
  const sendingEnded = performance.now()

  progress.phase = 'draining'
  const drainUntil = sendingEnded + (opts.drainTimeoutS ?? 10) * 1000
  while (progress.inFlight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20))
  const unacked = progress.inFlight
  clearInterval(reporter)
  await mapLimit(clients, 50, (c) => c.close(2000))

  const durationS = (Math.max(lastAck, sendingEnded) - start) / 1000
  return {
    devices: n,
    sent: progress.sent,
    acked: progress.acked,
    failed: progress.failed + unacked,
    durationS: Math.round(durationS * 1000) / 1000,
    ackedPerS: Math.round((progress.acked / durationS) * 10) / 10,
    p50AckMs: latency.quantile(0.5),
    p99AckMs: latency.quantile(0.99)
  }
}

function positive(raw: string): number {
  const v = Number(raw)
  if (!(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError('expected a number above 0')
  return v
}

interface CliOptions {
  url: string
  devices: number
  rate: number
  duration: number
  qos: '0' | '1'
  batch: number
  credentials?: string
  api?: string
  token?: string
  unit?: string
  idPrefix: string
  save?: string
  concurrency: number
  drain: number
  seed: number
}

async function loadDevices(o: CliOptions, program: Command): Promise<DeviceCredentials[]> {
  if (o.credentials && o.api) program.error('error: use either --credentials or --api, not both')
  if (o.credentials) {
    if (o.save) program.error('error: --save is for devices provisioned with --api')
    const all = await readCredentials(o.credentials)
    if (all.length < o.devices) program.error(`error: ${o.credentials} holds ${all.length} devices, fewer than --devices ${o.devices}`)
    return all.slice(0, o.devices)
  }
  if (!o.api) return program.error('error: give --credentials <file> or --api <url> with --token and --unit')
  if (!o.token || !o.unit) return program.error('error: --api needs --token (or FW_API_KEY) and --unit')
  const width = String(o.devices).length
  const ids = Array.from({ length: o.devices }, (_, i) => `${o.idPrefix}-${String(i + 1).padStart(width, '0')}`)
  console.error(`provisioning ${o.devices} sprinkler_pressure devices in unit ${o.unit} (${ids[0]} …)`)
  const devices = await provisionDevices({ api: o.api, token: o.token, unitId: o.unit, ids })
  if (o.save) {
    await saveCredentials(o.save, devices)
    console.error(`credentials saved to ${o.save}`)
  }
  return devices
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('load-generator')
    .description('Many sprinkler_pressure devices publishing telemetry at a total rate for a bounded time; JSON summary on stdout')
    .option('--url <url>', 'MQTT broker URL', DEFAULT_URL)
    .requiredOption('--devices <n>', 'number of devices (one MQTT connection each)', intArg(1, 100_000))
    .requiredOption('--rate <msg/s>', 'messages per second, all devices together', positive)
    .requiredOption('--duration <s>', `seconds of sending (at most ${MAX_DURATION_S})`, intArg(1, MAX_DURATION_S))
    .addOption(new Option('--qos <qos>', 'MQTT QoS').choices(['0', '1']).default('1'))
    .option('--batch <items>', 'telemetry items per message (array payload when above 1)', intArg(1, 500), 1)
    .option('--credentials <file>', 'JSON array of {"id", "secret"} of sprinkler_pressure devices')
    .option('--api <url>', 'Firewatch HTTP API to provision the devices through, e.g. http://127.0.0.1:8080')
    .addOption(new Option('--token <token>', 'bearer token for --api: an API key or access token of an admin (POST /api/v1/api-keys)').env('FW_API_KEY'))
    .option('--unit <unitId>', 'unit the provisioned devices belong to')
    .option('--id-prefix <prefix>', 'id prefix of provisioned devices', `load-${Date.now().toString(36)}`)
    .option('--save <file>', 'save the provisioned credentials here (mode 0600)')
    .option('--concurrency <n>', 'connections opened at a time', intArg(1, 1000), 50)
    .option('--drain <s>', 'seconds to wait for outstanding acknowledgements after sending', intArg(0, 600), 10)
    .option('--seed <n>', 'seed for the values', intArg(0, 2 ** 32 - 1), 1)
  program.parse(argv)
  const o = program.opts<CliOptions>()

  const controller = new AbortController()
  onSignals(async () => controller.abort())
  try {
    const devices = await loadDevices(o, program)
    const summary = await runLoad({
      url: o.url,
      devices,
      rate: o.rate,
      durationS: o.duration,
      qos: o.qos === '0' ? 0 : 1,
      batch: o.batch,
      connectConcurrency: o.concurrency,
      drainTimeoutS: o.drain,
      seed: o.seed,
      signal: controller.signal,
      onProgress: (p) =>
        console.error(
          p.phase === 'connecting'
            ? `[${p.elapsedS}s] connecting ${p.connected}/${devices.length}`
            : `[${p.elapsedS}s] ${p.phase}: sent ${p.sent} acked ${p.acked} in flight ${p.inFlight} failed ${p.failed}` +
                `${p.skipped ? ` skipped ${p.skipped}` : ''}, ${p.ackedPerS} acked/s`
        )
    })
    console.log(JSON.stringify(summary))
    if (summary.failed > 0) process.exitCode = 1
  } catch (err) {
    console.error(`load-generator: ${(err as Error).message}`)
    process.exitCode = 1
  }
}

if (isMain(import.meta.url)) await main(process.argv)
