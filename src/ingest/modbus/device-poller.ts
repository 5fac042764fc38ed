/**
 * Polls one Modbus slave on its schedule and feeds what it reads through the same path as an MQTT message: build
 * the device-contract payload, `normalize()` it against the profile, append it to the ingest log.
 *
 * A failed poll (no answer, a Modbus exception, the gateway connection down) produces no reading: after
 * `faultAfter` failures in a row the device gets a `fault` event at point `modbus` with the reason, and a `restore`
 * when it answers again. Nothing is ever read as zero. Whether a device is faulted is kept in Redis
 * ({@link FaultState}), so a restart of the pollers or a changed target still restores a fault raised before.
 */
import type { DeviceProfile } from '../../../schemas/device-profile.js'
import type { Logger } from '../../logger.js'
import { normalize } from '../normalize.js'
import type { IngestLog } from '../ingest-log.js'
import type { Rejections } from '../rejections.js'
import type { DeviceIdentity, MessageType } from '../types.js'
import { decodeValue } from './codec.js'
import type { Gateway } from './gateway.js'
import { planReads, type ReadBlock } from './register-map.js'
import { phaseOf, Schedule } from './schedule.js'

/** A device the registry says to poll. */
export interface ModbusTarget {
  deviceId: string
  unitId: string
  profile: string
  modbus: { host: string; port: number; unitId: number; pollIntervalMs: number }
}

/** What device pollers report to the manager (and the benchmark). */
export interface PollObserver {
  /** Time from a poll's planned tick to its last answer, ms. */
  polled(lagMs: number): void
  failed(): void
  /** A tick came while the previous poll was still running. */
  overlapped(): void
}

/** The event point of communication faults. */
export const FAULT_POINT = 'modbus'

export interface PresenceSink {
  /** `unitId`: the device's unit (the live channel's scope). */
  connected(deviceId: string, connection: object, unitId?: string): void
  disconnected(deviceId: string, connection: object): void
  seen(deviceId: string, connection: object, online?: boolean | null): void
}

/** The devices with a fault raised and not yet restored, kept outside the process (a Redis set). */
export interface FaultState {
  has(deviceId: string): Promise<boolean>
  add(deviceId: string): Promise<unknown>
  remove(deviceId: string): Promise<unknown>
}

export interface DevicePollerDeps {
  gateway: Gateway
  ingestLog: IngestLog
  rejections: Rejections
  presence: PresenceSink | null
  observer: PollObserver
  log: Logger
  faultAfter: number
  faults: FaultState
}

export class DevicePoller {
  private readonly blocks: ReadBlock[]
  private readonly identity: DeviceIdentity
  private readonly schedule: Schedule
  private seq = 0
  private failures = 0
  private faulted = false
  /** Whether `faulted` has been read from the fault state yet. */
  private faultKnown = false
  private answering = false
  private running: Promise<void> | null = null
  private stopped = false

  constructor(
    readonly target: ModbusTarget,
    private readonly profile: DeviceProfile,
    private readonly deps: DevicePollerDeps
  ) {
    this.blocks = planReads(profile.modbus!.registers)
    this.identity = { deviceId: target.deviceId, unitId: target.unitId, profile: target.profile }
    const interval = target.modbus.pollIntervalMs
    this.schedule = new Schedule(interval, phaseOf(target.deviceId, interval), (planned) => this.onTick(planned))
  }

  start(): void {
    this.schedule.start()
  }

  /** Stop planning polls; a poll under way finishes (or fails when its gateway is closed). */
  halt(): void {
    this.stopped = true
    this.schedule.stop()
  }

  async stop(): Promise<void> {
    this.halt()
    await this.running
    if (this.answering) this.deps.presence?.disconnected(this.target.deviceId, this)
  }

  private onTick(planned: number): void {
    if (this.running) {
      this.deps.observer.overlapped()
      return
    }
    this.running = this.poll(planned).finally(() => {
      this.running = null
    })
  }

  private async poll(planned: number): Promise<void> {
    const { gateway, observer, log } = this.deps
    const { deviceId } = this.target
    const values: Record<string, number> = {}
    try {
      for (const block of this.blocks) {
        const data = await gateway.read(this.target.modbus.unitId, block.function, block.address, block.count)
        for (const f of block.fields) values[f.metric] = decodeValue(data, f.offset, f.spec)
      }
    } catch (err) {
      observer.failed()
      await this.failed((err as Error).message, planned)
      return
    }
    observer.polled(Date.now() - planned)
    if (this.stopped || !(await this.knowFault())) return
    for (const [metric, value] of Object.entries(values)) {
      // A float register may hold NaN or ±Infinity (a sensor error code, an unwired input): no JSON number, no
      // reading. Drop that metric and keep the others rather than lose the whole reading.
      if (Number.isFinite(value)) continue
      delete values[metric]
      log.warn({ deviceId, metric, value: String(value) }, 'Modbus value is not a finite number; metric dropped')
    }
    this.failures = 0
    if (!this.answering) {
      this.answering = true
      this.deps.presence?.connected(deviceId, this, this.target.unitId)
    } else {
      this.deps.presence?.seen(deviceId, this)
    }
    if (this.faulted && (await this.submit('event', { ts: planned, seq: this.seq++, type: 'restore', point: FAULT_POINT, text: 'communication restored' }))) {
      this.faulted = false
      await this.deps.faults.remove(deviceId).catch((err: unknown) => log.warn({ err, deviceId }, 'cannot clear the Modbus fault state'))
      log.info({ deviceId, gateway: gateway.key, modbusUnitId: this.target.modbus.unitId }, 'Modbus slave answers again')
    }
    if (Object.keys(values).length > 0) await this.submit('telemetry', { ts: planned, seq: this.seq++, values })
  }

  /** Read once whether a fault is open from before this poller; false (retry next poll) while Redis is away. */
  private async knowFault(): Promise<boolean> {
    if (this.faultKnown) return true
    try {
      this.faulted = await this.deps.faults.has(this.target.deviceId)
      this.faultKnown = true
    } catch (err) {
      this.deps.log.warn({ err, deviceId: this.target.deviceId }, 'cannot read the Modbus fault state; poll result held back')
    }
    return this.faultKnown
  }

  private async failed(reason: string, planned: number): Promise<void> {
    this.failures++
    if (this.stopped || this.failures < this.deps.faultAfter || !(await this.knowFault()) || this.faulted) return
    const { deviceId } = this.target
    this.deps.log.warn({ deviceId, gateway: this.deps.gateway.key, modbusUnitId: this.target.modbus.unitId, reason }, 'Modbus slave not answering')
    // If the append fails the state stays, and the next failed poll raises the fault again.
    if (await this.submit('event', { ts: planned, seq: this.seq++, type: 'fault', point: FAULT_POINT, text: `communication fault: ${reason}` })) {
      this.faulted = true
      await this.deps.faults.add(deviceId).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'cannot keep the Modbus fault state'))
      if (this.answering) {
        this.answering = false
        this.deps.presence?.disconnected(deviceId, this)
      }
    }
  }

  /** Validate and append one payload, as the broker does for a PUBLISH. True once it is in the log (or refused). */
  private async submit(type: MessageType, payload: object): Promise<boolean> {
    const result = normalize(this.identity, this.profile, type, Buffer.from(JSON.stringify(payload)), Date.now())
    if (!result.ok) {
      this.deps.rejections.record(result.reason, this.target.deviceId, result.detail, { source: 'modbus' })
      return true
    }
    try {
      await this.deps.ingestLog.append(result.message)
      return true
    } catch (err) {
      this.deps.log.warn({ err, deviceId: this.target.deviceId }, 'ingest log append failed; the poll is lost')
      return false
    }
  }
}
