/**
 * The Modbus TCP side of `npm run demo`: three simulated gateways (one per pump room) on loopback ports the demo
 * picks, with sprinkler-pressure transmitters and fire-water tanks behind them as unit ids
 * (simulators/modbus-slaves.ts, docs/MODBUS.md). The server polls them; no secrets, no MQTT.
 *
 * scripts/demo/provision.ts registers the devices below through the API once the gateways listen;
 * scripts/demo-devices.ts runs the gateways in its own process, next to the MQTT devices, and applies control lines
 * appended to a file in the demo's run folder (`fault <device|all> none|silent|drop|malformed|exception <code>`,
 * `scenario <device> <name>`).
 * This module is plain data and text: it loads neither jsmodbus nor the server.
 */
import type { PressureScenario } from '../simulators/modbus-slaves.js'
import type { TankScenario } from '../simulators/scenarios/water-tank.js'

export type ModbusDeviceKind = 'sprinkler_pressure' | 'water_level'

export interface DemoModbusDevice {
  id: string
  /** The Firewatch unit (building) it belongs to. */
  unitId: string
  name: string
  kind: ModbusDeviceKind
  /** Its Modbus unit id (slave address) behind the gateway. */
  slave: number
  scenario: PressureScenario | TankScenario
  pollIntervalMs: number
  /** Set for the devices worth watching: what to watch for. */
  what?: string
}

export interface DemoModbusGateway {
  /** Where it sits, for people. */
  name: string
  devices: DemoModbusDevice[]
}

/** Pressure transmitters are polled every 2 s, tanks (slow to change) every 5 s. */
const PRESSURE_POLL_MS = 2000
const TANK_POLL_MS = 5000

const pressure = (unitId: string, n: number | null, slave: number, name: string, scenario: PressureScenario, what?: string): DemoModbusDevice => ({
  id: `${unitId}-mb-pressure${n === null ? '' : `-${n}`}`,
  unitId,
  name,
  kind: 'sprinkler_pressure',
  slave,
  scenario,
  pollIntervalMs: PRESSURE_POLL_MS,
  ...(what ? { what } : {})
})

const tank = (unitId: string, slave: number, name: string, scenario: TankScenario, what?: string): DemoModbusDevice => ({
  id: `${unitId}-mb-tank`,
  unitId,
  name,
  kind: 'water_level',
  slave,
  scenario,
  pollIntervalMs: TANK_POLL_MS,
  ...(what ? { what } : {})
})

/** One gateway per pump room; its devices' order is their order of registration. */
export const MODBUS_GATEWAYS: DemoModbusGateway[] = [
  {
    name: '江南大道数据中心 消防泵房 Jiangnan Avenue Data Center pump room',
    devices: [
      pressure('xg-datacenter', 1, 1, '数据中心 喷淋主管压力 sprinkler main pressure (Modbus) 1', 'normal'),
      pressure('xg-datacenter', 2, 2, '数据中心 喷淋主管压力 sprinkler main pressure (Modbus) 2', 'normal'),
      tank('xg-datacenter', 3, '数据中心 消防水池液位 fire-water pool level (Modbus)', 'filling')
    ]
  },
  {
    name: '西湖区第三人民医院 消防泵房 Xihu No. 3 Hospital pump room',
    devices: [
      pressure('bs-hospital', 1, 1, '医院 喷淋主管压力 sprinkler main pressure (Modbus) 1', 'normal'),
      pressure('bs-hospital', 2, 2, '医院 喷淋末端压力 sprinkler end pressure (Modbus) 2', 'slow-leak', 'slow leak, polled over Modbus'),
      tank('bs-hospital', 3, '医院 屋顶消防水箱液位 roof fire-water tank level (Modbus)', 'draining', 'fire-water tank draining (Modbus)')
    ]
  },
  {
    name: '长河电子厂 消防泵房 Changhe Electronics Factory pump room',
    devices: [
      pressure('ch-factory', null, 1, '电子厂 喷淋主管压力 sprinkler main pressure (Modbus)', 'pump-start', 'fire pump starts: dip, then overshoot (Modbus)'),
      tank('ch-factory', 2, '电子厂 消防水池液位 fire-water pool level (Modbus)', 'filling')
    ]
  }
]

export const MODBUS_DEVICES: DemoModbusDevice[] = MODBUS_GATEWAYS.flatMap((g) => g.devices)

/** The Modbus device the demo's guide and summary single out: the leaking pressure transmitter. */
export function modbusLeak(): DemoModbusDevice {
  return MODBUS_DEVICES.find((d) => d.scenario === 'slow-leak') ?? MODBUS_DEVICES[0]!
}

/** What scripts/demo/devices.ts hands the device runner (in the credentials file) for the gateways. */
export interface DemoModbusRun {
  host: string
  /** Milliseconds per scenario step (the demo's --interval). */
  stepMs: number
  seed: number
  /** Control lines appended to this file are applied to the running gateways. */
  controlFile: string
  gateways: { port: number; name: string; devices: { id: string; slave: number; kind: ModbusDeviceKind; scenario: string }[] }[]
}

export function modbusRun(host: string, ports: number[], stepMs: number, seed: number, controlFile: string): DemoModbusRun {
  return {
    host,
    stepMs,
    seed,
    controlFile,
    gateways: MODBUS_GATEWAYS.map((g, i) => ({
      port: ports[i]!,
      name: g.name,
      devices: g.devices.map((d) => ({ id: d.id, slave: d.slave, kind: d.kind, scenario: d.scenario }))
    }))
  }
}

/**
 * A control line with a device id instead of a unit id, resolved to the gateway it concerns and the line the
 * simulator understands (`fault 2 silent`); `all` goes to every gateway. Returns an error text for anything else.
 */
export function resolveControl(line: string, run: Pick<DemoModbusRun, 'gateways'>): { gateways: number[]; line: string } | { error: string } {
  const words = line.trim().split(/\s+/)
  const [cmd, target] = words
  const usage =
    'commands: fault <device|all> none|silent|drop|malformed|exception <code> · scenario <device> <name>; devices: ' +
    run.gateways.flatMap((g) => g.devices.map((d) => d.id)).join(', ')
  if ((cmd !== 'fault' && cmd !== 'scenario') || !target) return { error: usage }
  if (target === 'all') {
    if (cmd !== 'fault') return { error: usage }
    return { gateways: run.gateways.map((_, i) => i), line: words.join(' ') }
  }
  for (const [i, g] of run.gateways.entries()) {
    const d = g.devices.find((x) => x.id === target)
    if (d) return { gateways: [i], line: [cmd, String(d.slave), ...words.slice(2)].join(' ') }
  }
  return { error: `no Modbus device ${target}; ${usage}` }
}
