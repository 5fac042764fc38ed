/**
 * Runs one simulated device: connects, then every interval publishes the behaviour's telemetry and events, answers
 * commands, and stops after the duration or on stop(). Shared by every device simulator.
 */
import type { Behaviour, SimEvent } from './behaviour.js'
import { DeviceClient, withTimeout, type DeviceCommand, type Published } from './device-client.js'

export interface DeviceRunOptions {
  url: string
  id: string
  secret: string
  /** Milliseconds per step. */
  intervalMs: number
  /** Seconds to run; 0 runs until stop(). */
  durationS: number
  /** No line per publish. */
  quiet?: boolean
}

/** What a device simulator takes: the run options plus its scenario and seed. */
export interface SimulatorOptions<S extends string> extends DeviceRunOptions {
  scenario: S
  /** Same seed, same values and events. */
  seed: number
}

export interface RunStats {
  steps: number
  /** Messages published, acknowledged by the broker, and failed. */
  published: number
  acked: number
  failed: number
}

export interface SimulatorHandle {
  readonly id: string
  readonly stats: RunStats
  /** Settles when the run ends: resolves after the duration or stop(), rejects when the broker refuses a reconnect. */
  readonly done: Promise<RunStats>
  /** Stop stepping, wait (bounded) for outstanding acknowledgements, say offline and disconnect. */
  stop(): Promise<RunStats>
}

const clock = () => new Date().toISOString().slice(11, 23)
const PENDING_WAIT_MS = 5000

function describeValues(values: Record<string, number>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
}

function describeEvents(events: SimEvent[]): string {
  const first = events[0]!
  const one = [first.type, first.point, first.text && JSON.stringify(first.text)].filter(Boolean).join(' ')
  return events.length === 1 ? one : `${events.length} events, first ${one}`
}

export async function runDevice(opts: DeviceRunOptions, behaviour: Behaviour): Promise<SimulatorHandle> {
  const say = (line: string) => console.log(`${clock()} ${opts.id} ${line}`)
  const stats: RunStats = { steps: 0, published: 0, acked: 0, failed: 0 }
  const pending = new Set<Promise<unknown>>()
  let settle!: { resolve: (s: RunStats) => void; reject: (e: Error) => void }
  const done = new Promise<RunStats>((resolve, reject) => (settle = { resolve, reject }))
  // The caller may never look at `done` (it awaits stop() instead); a fatal error must still not go unhandled.
  done.catch(() => {})
  let client: DeviceClient | null = null
  let tallied = false
  let timer: NodeJS.Timeout | null = null
  let finishing: Promise<RunStats> | null = null

  const publish = (kind: string, send: (c: DeviceClient) => Promise<Published>, describe: string) => {
    stats.published++
    const p = send(client!).then(
      (r) => {
        if (tallied) return
        stats.acked++
        if (!opts.quiet) say(`#${r.seq[0]}${r.seq[1] > r.seq[0] ? `-${r.seq[1]}` : ''} ${kind} ${describe} (${r.ackMs.toFixed(0)} ms)`)
      },
      (err: Error) => {
        if (tallied) return
        stats.failed++
        console.error(`${opts.id}: ${kind} not published: ${err.message}`)
      }
    )
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }

  const onCommand = (command: DeviceCommand) => {
    say(`command ${JSON.stringify(command)}`)
    if (command.cmd === 'time_sync' && typeof command.ts === 'number') say(`clock offset ${Date.now() - command.ts} ms`)
    if (command.cmd === 'self_test') {
      const events: SimEvent[] = [{ type: 'test', text: 'self-test requested by the monitoring center' }]
      publish('events', (c) => c.events(events), describeEvents(events))
    }
  }

  client = await DeviceClient.connect({
    url: opts.url,
    id: opts.id,
    secret: opts.secret,
    onCommand,
    onLink: (up) => say(up ? 'reconnected' : 'connection lost; reconnecting'),
    onFatal: (err) => void finish(err)
  })

  const started = Date.now()

  const step = () => {
    const k = stats.steps++
    const { values, events } = behaviour(k)
    publish('telemetry', (c) => c.telemetry([values]), describeValues(values))
    if (events.length > 0) publish('events', (c) => c.events(events), describeEvents(events))
    // Scheduled from the start time, so steps do not drift with the event loop's delays.
    const next = started + stats.steps * opts.intervalMs
    if (opts.durationS > 0 && next - started >= opts.durationS * 1000) {
      timer = setTimeout(() => void finish(), Math.max(0, started + opts.durationS * 1000 - Date.now()))
    } else {
      timer = setTimeout(step, Math.max(0, next - Date.now()))
    }
  }

  function finish(fatal?: Error): Promise<RunStats> {
    finishing ??= (async () => {
      if (timer) clearTimeout(timer)
      await withTimeout(Promise.all(pending), PENDING_WAIT_MS, 'outstanding acknowledgements').catch(() => {})
      // What the broker has not acknowledged by now is lost to this run: count it, and ignore late answers.
      tallied = true
      if (pending.size > 0) {
        stats.failed += pending.size
        console.error(`${opts.id}: ${pending.size} messages not acknowledged before stopping`)
      }
      await client!.close()
      if (fatal) settle.reject(fatal)
      else settle.resolve(stats)
      return stats
    })()
    return finishing
  }

  step()
  return {
    id: opts.id,
    stats,
    done,
    stop: () => finish()
  }
}
