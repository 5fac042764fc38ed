/**
 * Modbus TCP polling: register maps from device profiles, one connection per gateway, readings and communication
 * faults through the same normalize → ingest log path as MQTT. See README.md and docs/MODBUS.md.
 */
import type { RegistryRepository } from '../../store/registry-repository.js'
import { ModbusPollers, type ModbusPollersOptions } from './poller-manager.js'

export { ModbusPollers, type ModbusPollersOptions, type PollStats } from './poller-manager.js'
export type { ModbusTarget } from './device-poller.js'
export { FAULT_POINT } from './device-poller.js'
export { registerMapProblem, planReads, MAX_READ } from './register-map.js'
export { decodeValue, decodeRaw, decodeBit, encodeRaw, encodeValue } from './codec.js'

/** The pollers of every Modbus device in the registry. */
export function createModbusPollers(registry: Pick<RegistryRepository, 'listModbusTargets'>, opts: Omit<ModbusPollersOptions, 'targets'>): ModbusPollers {
  return new ModbusPollers({ ...opts, targets: () => registry.listModbusTargets() })
}
