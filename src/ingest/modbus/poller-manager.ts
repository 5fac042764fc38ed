/**
 * Keeps one {@link DevicePoller} per Modbus target and one {@link Gateway} per host:port, in step with the registry:
 * targets are reread every `reloadMs` and whenever {@link ModbusPollers.reload} is called (the API does after a
 * device is created), so devices are picked up and dropped without a restart.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../../logger.js'
import type { ProfileMap } from '../profiles.js'
import type { IngestLog } from '../ingest-log.js'
import type { Rejections } from '../rejections.js'
import { DevicePoller, type FaultState, type ModbusTarget, type PresenceSink } from './device-poller.js'
import { Gateway, gatewayKey } from './gateway.js'

export interface ModbusPollersOptions {
  /** Where the targets come from (the registry). */
  targets: () => Promise<ModbusTarget[]>
  profiles: ProfileMap
  ingestLog: IngestLog
  rejections: Rejections
  presence?: PresenceSink | null
  log: Logger
  /** Where the open communication faults are kept (`{redisPrefix}modbus:faulted`), so a restart still restores them. */
  redis: Redis
  redisPrefix: string
  /** @defaultValue 1000 */
  timeoutMs?: number
  /** @defaultValue 10000 */
  reloadMs?: number
  /** Failed polls in a row before a communication fault is raised. @defaultValue 2 */
  faultAfter?: number
  /** Reconnect backoff of a gateway. @defaultValue 250 doubling to 10000 */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export interface PollStats {
  targets: number
  gateways: number
  polls: number
  failures: number
  overlapped: number
}

const signature = (t: ModbusTarget) => JSON.stringify([t.unitId, t.profile, t.modbus])

export class ModbusPollers {
  private readonly pollers = new Map<string, { poller: DevicePoller; signature: string }>()
  private readonly gateways = new Map<string, Gateway>()
  private readonly counts = { polls: 0, failures: 0, overlapped: 0 }
  private lags: number[] = []
  private timer: NodeJS.Timeout | null = null
  private syncing: Promise<void> = Promise.resolve()
  private stopped = false
  private readonly observer = {
    polled: (lagMs: number) => {
      this.counts.polls++
      if (this.lags.length < 1_000_000) this.lags.push(lagMs)
    },
    failed: () => void this.counts.failures++,
    overlapped: () => void this.counts.overlapped++
  }

  private readonly faults: FaultState

  constructor(private readonly opts: ModbusPollersOptions) {
    const key = `${opts.redisPrefix}modbus:faulted`
    const { redis } = opts
    this.faults = {
      has: async (id) => (await redis.sismember(key, id)) === 1,
      add: (id) => redis.sadd(key, id),
      remove: (id) => redis.srem(key, id)
    }
  }

  async start(): Promise<void> {
    await this.reload()
    const every = this.opts.reloadMs ?? 10_000
    this.timer = setInterval(() => void this.reload(), every)
    this.timer.unref()
  }

  /** Reread the targets and start, stop or restart pollers to match. Calls are serialised. */
  reload(): Promise<void> {
    this.syncing = this.syncing.then(async () => {
      if (this.stopped) return
      try {
        await this.sync(await this.opts.targets())
      } catch (err) {
        this.opts.log.warn({ err }, 'cannot reload Modbus targets; keeping the current ones')
      }
    })
    return this.syncing
  }

  stats(): PollStats {
    return { targets: this.pollers.size, gateways: this.gateways.size, ...this.counts }
  }

  /** The schedule lags (planned tick → last answer, ms) recorded since the last call. */
  takeLags(): number[] {
    const lags = this.lags
    this.lags = []
    return lags
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.syncing
    // Halt first and close the gateways next, which fails every queued request at once; only then wait for the
    // polls, which are finishing by now (waiting first would take up to one timeout per queued request).
    for (const p of this.pollers.values()) p.poller.halt()
    await Promise.all([...this.gateways.values()].map((g) => g.close()))
    this.gateways.clear()
    await Promise.all([...this.pollers.values()].map((p) => p.poller.stop()))
    this.pollers.clear()
  }

  private async sync(targets: ModbusTarget[]): Promise<void> {
    const { log, profiles } = this.opts
    const wanted = new Map<string, ModbusTarget>()
    for (const t of targets) {
      const profile = profiles.get(t.profile)
      if (!profile?.modbus) {
        log.warn({ deviceId: t.deviceId, profile: t.profile }, 'Modbus device has no profile with a register map; not polled')
        continue
      }
      wanted.set(t.deviceId, t)
    }
    const stopping: Promise<void>[] = []
    for (const [id, p] of this.pollers) {
      const t = wanted.get(id)
      if (t && signature(t) === p.signature) {
        wanted.delete(id)
        continue
      }
      this.pollers.delete(id)
      // A device gone from the registry has no fault left to restore; a changed one keeps it for its new poller.
      // Cleared after its poller stopped, so a fault that poller was still recording cannot come back.
      const stopped = p.poller.stop()
      stopping.push(
        t
          ? stopped
          : stopped
              .then(() => this.faults.remove(id))
              .then(
                () => undefined,
                (err: unknown) => log.warn({ err, deviceId: id }, 'cannot clear the Modbus fault state')
              )
      )
      log.info({ deviceId: id }, t ? 'Modbus target changed; polling it anew' : 'Modbus target removed; polling stopped')
    }
    await Promise.all(stopping)
    for (const t of wanted.values()) {
      const poller = new DevicePoller(t, profiles.get(t.profile)!, {
        gateway: this.gateway(t.modbus.host, t.modbus.port),
        ingestLog: this.opts.ingestLog,
        rejections: this.opts.rejections,
        presence: this.opts.presence ?? null,
        observer: this.observer,
        log,
        faultAfter: this.opts.faultAfter ?? 2,
        faults: this.faults
      })
      this.pollers.set(t.deviceId, { poller, signature: signature(t) })
      poller.start()
      log.info({ deviceId: t.deviceId, ...t.modbus }, 'polling Modbus device')
    }
    // Close gateways no poller uses any more.
    const used = new Set([...this.pollers.values()].map((p) => gatewayKey(p.poller.target.modbus.host, p.poller.target.modbus.port)))
    for (const [key, g] of this.gateways) {
      if (used.has(key)) continue
      this.gateways.delete(key)
      await g.close()
    }
  }

  private gateway(host: string, port: number): Gateway {
    const key = gatewayKey(host, port)
    let g = this.gateways.get(key)
    if (!g) {
      const { log } = this.opts
      g = new Gateway({ host, port, timeoutMs: this.opts.timeoutMs, minBackoffMs: this.opts.minBackoffMs, maxBackoffMs: this.opts.maxBackoffMs })
      g.on('connected', () => log.info({ gateway: key }, 'Modbus gateway connected'))
      g.on('disconnected', (reason: string) => log.warn({ gateway: key, reason }, 'Modbus gateway connection lost; reconnecting'))
      g.on('unreachable', (reason: string, retryInMs: number) => log.warn({ gateway: key, reason, retryInMs }, 'cannot connect to Modbus gateway'))
      this.gateways.set(key, g)
      g.start()
    }
    return g
  }
}
