/**
 * The simulated devices, from the demo's side: one child process (scripts/demo-devices.ts) runs every MQTT device,
 * the UITDs over GB/T 26875.3 and the Modbus gateways; the demo waits for the gateways to listen, registers their
 * devices for polling, and waits for the MQTT devices and the UITDs to connect.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DemoCredentials } from '../demo-devices.js'
import { MODBUS_DEVICES, MODBUS_GATEWAYS, modbusRun } from '../demo-modbus.js'
import type { Api } from './api.js'
import { assertRunning, childEnv, startChild } from './child-processes.js'
import { Stopped } from './errors.js'
import type { ModbusGuide } from './guide.js'
import type { Options } from './options.js'
import { green, step, warn } from './output.js'
import { canConnect, freePorts } from './ports.js'
import { registerModbus, type Provisioned } from './provision.js'
import type { RunFolder } from './run-folder.js'
import { readStatus } from './server.js'

export interface DeviceRunner {
  child: ChildProcess
  logFile: string
  modbus: ModbusGuide
}

/**
 * Write the credentials file and start the device runner; see waitDevices. `gb26875`: the server's GB/T 26875.3
 * gateway, which the UITDs connect to.
 */
export async function startDevices(
  opts: Options,
  mqttUrl: string,
  gb26875: { host: string; port: number },
  provisioned: Provisioned,
  folder: RunFolder
): Promise<DeviceRunner> {
  const { simulated, uitds } = provisioned
  // The Modbus gateways listen on loopback ports picked now, with the server holding its own.
  const host = '127.0.0.1'
  const ports = await freePorts(host, MODBUS_GATEWAYS.length)
  const credentials: DemoCredentials = {
    mqttUrl,
    intervalMs: opts.intervalMs,
    seed: opts.seed,
    devices: simulated.map((d) => ({ id: d.id, kind: d.kind, secret: d.secret, scenario: d.scenario })),
    modbus: modbusRun(host, ports, opts.intervalMs, opts.seed, folder.modbusControl),
    gb26875: {
      // net.connect takes an IPv6 address without its brackets.
      host: gb26875.host.replace(/^\[(.*)\]$/, '$1'),
      port: gb26875.port,
      intervalMs: opts.intervalMs,
      seed: opts.seed,
      uitds: uitds.map((u) => ({ id: u.id, address: u.address, scenario: u.scenario }))
    }
  }
  writeFileSync(folder.credentialsFile, JSON.stringify(credentials, null, 2), { mode: 0o600 })
  const child = startChild('scripts/demo-devices.ts', [folder.credentialsFile], folder.devicesLog, childEnv({}))
  step(
    'devices',
    `starting ${simulated.length} simulated MQTT devices, ${uitds.length} UITDs over GB/T 26875.3 and ${MODBUS_GATEWAYS.length} Modbus gateways in one process (pid ${child.pid}, every ${opts.intervalMs} ms, log ${folder.devicesLog})`
  )
  return { child, logFile: folder.devicesLog, modbus: { host, ports, controlFile: folder.modbusControl } }
}

/** Throws when the device runner has exited. */
export function assertDevicesRunning(runner: DeviceRunner): void {
  assertRunning(runner.child, 'the simulated devices', { file: runner.logFile, title: 'devices log' })
}

/**
 * Register the Modbus devices once their gateways listen, then wait for the `expected` MQTT devices and UITDs to
 * connect (the server counts both in connectedDevices; the Modbus devices are polled, not connected).
 * Resolves to the Modbus side of the guide, null when the gateways did not start.
 */
export async function waitDevices(api: Api, runner: DeviceRunner, expected: number, stop: AbortSignal): Promise<ModbusGuide | null> {
  const { host, ports } = runner.modbus
  let modbus: ModbusGuide | null = null
  if (await waitGateways(runner, stop, 20_000)) {
    await registerModbus(api, host, ports)
    modbus = runner.modbus
    step('', `${green(`${MODBUS_DEVICES.length} Modbus devices`)} on ${ports.map((p) => `${host}:${p}`).join(', ')}, polled by the server`)
  } else {
    warn(`the Modbus gateways did not listen within 20 s; running without them (see ${runner.logFile})`)
  }
  const connected = await waitConnected(api, expected, runner, stop)
  if (connected < expected) {
    warn(`only ${connected}/${expected} devices connected after 30 s; see ${runner.logFile}`)
  } else {
    step('', `${green(`${connected}/${expected} connected`)}`)
  }
  return modbus
}

/** Wait until the device runner's Modbus gateways listen; false if they do not within `timeoutMs`. */
async function waitGateways(runner: DeviceRunner, stop: AbortSignal, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  const pending = new Set(runner.modbus.ports)
  while (Date.now() < deadline) {
    if (stop.aborted) throw new Stopped()
    assertDevicesRunning(runner)
    for (const port of [...pending]) if (await canConnect(runner.modbus.host, port)) pending.delete(port)
    if (pending.size === 0) return true
    await sleep(200)
  }
  return false
}

/** How many devices the server sees connected, once all `expected` are or after 30 s. */
async function waitConnected(api: Api, expected: number, runner: DeviceRunner, stop: AbortSignal): Promise<number> {
  const deadline = Date.now() + 30_000
  let connected = 0
  while (Date.now() < deadline) {
    if (stop.aborted) throw new Stopped()
    assertDevicesRunning(runner)
    const ready = await readStatus(api.base)
    connected = Number(ready?.status.connectedDevices ?? 0)
    if (connected >= expected) return connected
    await sleep(500)
  }
  return connected
}
