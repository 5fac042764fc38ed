/**
 * The GB/T 26875.3 side of `npm run demo`: a few user information transmission devices (UITDs) that speak the
 * standard over TCP to the server's gateway (`GB26875_PORT`) instead of MQTT. They are registered with protocol
 * `gb26875` and their 6-byte address (scripts/demo/provision.ts) and get no secret: the address is the identity
 * (docs/PROTOCOL.md, "GB/T 26875.3").
 *
 * scripts/demo-devices.ts runs them with the simulators' UITD client (simulators/lib/gb26875-client.ts), one step
 * per `--interval` like every other simulated device: a heartbeat (an empty send-data frame), or, when the panel
 * behind the UITD has news, a component or system status frame. The news comes from the panels' own scenarios
 * (simulators/scenarios/panel.ts), so a UITD's fire or fault follows the same timeline as a panel's.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { UitdClient } from '../simulators/lib/gb26875-client.js'
import type { SimEvent } from '../simulators/lib/behaviour.js'
import { hash, unit } from '../simulators/lib/random.js'
import { PANEL_TIMELINE, panelBehaviour, type PanelScenario } from '../simulators/scenarios/panel.js'
import { Command, timeAt, type AppData } from '../src/ingest/gb26875/index.js'

/**
 * `fire` and `fault`: the panel scenarios of the same names (once, from step 2). `routine`: episodes of
 * PANEL_TIMELINE.randomEpisode steps, each quiet, a fault or an isolation, like the panels' `random` less its fires
 * and power faults.
 */
export const UITD_DEMO_SCENARIOS = ['quiet', 'routine', 'fault', 'fire'] as const
export type UitdDemoScenario = (typeof UITD_DEMO_SCENARIOS)[number]

export interface DemoUitd {
  id: string
  unitId: string
  name: string
  /** 12 hex digits, the 6 bytes in wire order (frame bytes 12–17). */
  address: string
  scenario: UitdDemoScenario
  /** Set for the UITDs worth watching: what to watch for. */
  what?: string
}

/** The demo's UITDs over GB/T 26875.3, one in each of three units (beside their MQTT devices); one sees a fire. */
export const GB26875_UITDS: DemoUitd[] = [
  {
    id: 'xx-tower-gb-uitd',
    unitId: 'xx-tower',
    name: '西溪高层公寓 用户信息传输装置 UITD (GB/T 26875.3)',
    address: '385b01000001',
    scenario: 'fire',
    what: 'fire alarm relayed over GB/T 26875.3'
  },
  {
    id: 'bs-museum-gb-uitd',
    unitId: 'bs-museum',
    name: '北山路近代建筑博物馆 用户信息传输装置 UITD (GB/T 26875.3)',
    address: '385b01000002',
    scenario: 'fault',
    what: 'detector fault relayed over GB/T 26875.3'
  },
  {
    id: 'qb-hefang-gb-uitd',
    unitId: 'qb-hefang',
    name: '河坊街古建筑群 用户信息传输装置 UITD (GB/T 26875.3)',
    address: '385b01000003',
    scenario: 'routine'
  }
]

/** What the device runner needs to run the UITDs. */
export interface DemoGb26875Run {
  host: string
  port: number
  intervalMs: number
  seed: number
  uitds: { id: string; address: string; scenario: UitdDemoScenario }[]
}

/** The panel events behind a UITD at step k. */
export function uitdPanelEvents(scenario: UitdDemoScenario, seed: number): (k: number) => SimEvent[] {
  if (scenario === 'routine') {
    const len = PANEL_TIMELINE.randomEpisode
    const weights: [PanelScenario, number][] = [
      ['quiet', 0.5],
      ['fault', 0.3],
      ['isolate', 0.2]
    ]
    return (k) => {
      const e = Math.floor(k / len)
      let r = unit(seed, e, 'episode')
      const picked = weights.find(([, w]) => (r -= w) < 0)?.[0] ?? 'quiet'
      return panelBehaviour(picked, hash(seed, e))(k % len).events
    }
  }
  const panel = panelBehaviour(scenario, seed)
  return (k) => panel(k).events
}

// GB/T 26875.3-2011 status bits: 0 normal, 1 fire, 2 fault, 3 disabled (屏蔽); system bits 8 main power fault, 13 reset.
const COMPONENT_STATUS: Partial<Record<SimEvent['type'], number>> = { fire: 0b11, fault: 0b101, isolate: 0b1001, restore: 0b1 }
const SYSTEM_STATUS: Partial<Record<SimEvent['type'], number>> = { power_fault: 1 | (1 << 8), reset: 1 | (1 << 13), restore: 0b1 }
// System type 1: fire alarm system; component type 42: photoelectric smoke detector.
const SYSTEM = { sysType: 1, sysAddr: 1 }
const SMOKE_DETECTOR = 42

/**
 * A panel event as the UITD sends it: a point's event is a component status (its loop-zone-address point becoming
 * the 4-byte component address zone:2 + address:2), a panel-wide one a system status. Null when the standard has
 * no status bit for it.
 */
export function frameOf(event: SimEvent, epochMs: number): AppData | null {
  const time = timeAt(epochMs, 480)
  if (event.point) {
    const status = COMPONENT_STATUS[event.type]
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(event.point)
    if (status === undefined || !m) return null
    const compAddr = ((Number(m[2]) & 0xffff) << 16) | (Number(m[3]) & 0xffff)
    // The description is 31 bytes of GB 18030: the place only (`12F east corridor`), not the panel's comment.
    const description = (event.text ?? '').split(':')[0]!.slice(0, 31)
    return { type: 2, objects: [{ ...SYSTEM, compType: SMOKE_DETECTOR, compAddr: compAddr >>> 0, status, description, time }] }
  }
  const status = SYSTEM_STATUS[event.type]
  return status === undefined ? null : { type: 1, objects: [{ ...SYSTEM, status, time }] }
}

export interface UitdStats {
  frames: number
  confirmed: number
  denied: number
  unanswered: number
}

export interface DemoUitdHandle {
  id: string
  readonly stats: UitdStats
  stop(): Promise<void>
}

/** The gateway closes a connection silent for 90 s: between steps longer than this, heartbeats keep it up. */
const MAX_SILENCE_MS = 20_000

/**
 * Run one UITD until stopped: connects (resolving once connected, throwing when it cannot), then one frame per
 * step, each waiting for the center's confirm; after a lost connection it connects again, as a UITD does.
 */
export async function runDemoUitd(
  run: Pick<DemoGb26875Run, 'host' | 'port' | 'intervalMs'>,
  uitd: DemoGb26875Run['uitds'][number],
  seed: number,
  log: (line: string) => void,
  quiet: boolean
): Promise<DemoUitdHandle> {
  const stats: UitdStats = { frames: 0, confirmed: 0, denied: 0, unanswered: 0 }
  const connect = () => UitdClient.connect({ host: run.host, port: run.port, address: uitd.address })
  let client = await connect()
  const stopper = new AbortController()
  const events = uitdPanelEvents(uitd.scenario, seed)

  const send = async (what: string, data: AppData | null): Promise<void> => {
    stats.frames++
    const answer = data ? await client.sendData(data) : await client.heartbeat()
    if (stopper.signal.aborted) return
    if (!answer) {
      stats.unanswered++
      log(`${uitd.id}: ${what}: no answer`)
      if (client.socket.destroyed || client.socket.readableEnded) {
        client.close()
        while (!stopper.signal.aborted) {
          try {
            client = await connect()
            log(`${uitd.id}: connected again`)
            return
          } catch {
            await sleep(1000, undefined, { signal: stopper.signal }).catch(() => undefined)
          }
        }
      }
    } else if (answer.command === Command.confirm) {
      stats.confirmed++
      if (data && !quiet) log(`${uitd.id}: ${what}: confirmed (serial ${answer.serial})`)
    } else {
      stats.denied++
      log(`${uitd.id}: ${what}: denied (serial ${answer.serial})`)
    }
  }

  const done = (async () => {
    for (let k = 0; !stopper.signal.aborted; k++) {
      const news = events(k)
        .map((e) => ({ e, data: frameOf(e, Date.now()) }))
        .filter((n) => n.data !== null)
      if (news.length === 0) await send('heartbeat', null)
      for (const { e, data } of news) {
        if (stopper.signal.aborted) break
        await send(`${e.type}${e.point ? ` at ${e.point}` : ''}`, data)
      }
      // One step per interval; heartbeats in between when the interval is longer than the gateway tolerates.
      for (let left = run.intervalMs; left > 0 && !stopper.signal.aborted; left -= MAX_SILENCE_MS) {
        await sleep(Math.min(left, MAX_SILENCE_MS), undefined, { signal: stopper.signal }).catch(() => undefined)
        if (left > MAX_SILENCE_MS && !stopper.signal.aborted) await send('heartbeat', null)
      }
    }
  })()
  done.catch((err: Error) => log(`${uitd.id} stopped: ${err.message}`))

  return {
    id: uitd.id,
    stats,
    async stop() {
      stopper.abort()
      client.close()
      await done.catch(() => undefined)
    }
  }
}
