/**
 * Modbus TCP slaves behind simulated gateways: sprinkler pressure transmitters and fire-water tank level sensors,
 * many unit ids on one port, with faults switchable at run time (stop answering, answer with an exception code,
 * drop the connection, answer with a broken frame) and values that can be pinned (a NaN from a float register). Register contents follow the `modbus:` maps of devices/sprinkler_pressure.yaml and
 * devices/water_level.yaml, encoded with the codec the pollers decode with.
 *
 *   npx tsx simulators/modbus-slaves.ts --port 1502 --pressure 8 --tanks 2 [--gateways N] [--step MS]
 *
 * Control on stdin, one command a line: `fault <unit|all> none|silent|drop|malformed|exception <code>`,
 * `scenario <unit> <name>`, `help`. Built on jsmodbus's server side; exported for tests and the benchmark.
 */
import net from 'node:net'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Command } from 'commander'
import { ModbusTCPServer } from 'jsmodbus'
import type { DeviceProfile, ModbusFunction } from '../schemas/device-profile.js'
import { projectRoot } from '../src/config/index.js'
import { parseProfile } from '../src/ingest/profiles.js'
import { encodeValue } from '../src/ingest/modbus/codec.js'
import { WIDTH } from '../src/ingest/modbus/register-map.js'
import { intArg, isMain } from './lib/cli.js'
import type { Behaviour } from './lib/behaviour.js'
import { sprinklerBehaviour, type SprinklerScenario } from './scenarios/sprinkler-pressure.js'
import { TANK_SCENARIOS, tankBehaviour, type TankScenario } from './scenarios/water-tank.js'

/** Pressure scenarios: the MQTT transmitter's, plus a sensor stuck at one value. */
export const PRESSURE_SCENARIOS = ['normal', 'slow-leak', 'pump-start', 'burst', 'stuck'] as const
export type PressureScenario = (typeof PRESSURE_SCENARIOS)[number]
/** A stuck sensor freezes at this step's value. */
const STUCK_AT_STEP = 10

export type SlaveSpec =
  | { unitId: number; kind: 'pressure'; scenario: PressureScenario; seed?: number }
  | { unitId: number; kind: 'tank'; scenario: TankScenario; seed?: number }

/**
 * Modbus Application Protocol v1.1b3 §7: exception codes a slave may answer with. `malformed`: a reply whose byte
 * count (§6.3) claims more bytes than its MBAP header length carries, as a gateway with a firmware bug sends.
 */
export type Fault = { kind: 'none' } | { kind: 'silent' } | { kind: 'drop' } | { kind: 'malformed' } | { kind: 'exception'; code: number }

export interface ModbusGatewayOptions {
  host?: string
  /** 0 picks a free port. */
  port?: number
  slaves: SlaveSpec[]
  /** Milliseconds per scenario step. @defaultValue 1000 */
  stepMs?: number
}

export interface ModbusGatewayHandle {
  port: number
  setFault(unitId: number | 'all', fault: Fault): void
  setScenario(unitId: number, scenario: string): void
  /** Pin a metric of a slave to a value (NaN, Infinity: what a float register may hold), or unpin it with null. */
  setValue(unitId: number, metric: string, value: number | null): void
  close(): Promise<void>
}

/** Exception 0x0B: a gateway's answer for a unit id nobody answers behind it. Exception 2: an address not mapped. */
const GATEWAY_TARGET_FAILED = 0x0b
const ILLEGAL_DATA_ADDRESS = 0x02
const FC: Record<ModbusFunction, number> = { coils: 1, discrete_inputs: 2, holding_registers: 3, input_registers: 4 }

const profileCache = new Map<string, DeviceProfile>()
function profileOf(name: string): DeviceProfile {
  let p = profileCache.get(name)
  if (!p) {
    const file = path.join(projectRoot, 'devices', `${name}.yaml`)
    p = parseProfile(readFileSync(file, 'utf8'), file)
    profileCache.set(name, p)
  }
  return p
}

function behaviourOf(s: SlaveSpec): Behaviour {
  const seed = s.seed ?? s.unitId
  if (s.kind === 'tank') return tankBehaviour(s.scenario, seed)
  if (s.scenario === 'stuck') {
    const b = sprinklerBehaviour('normal', seed)
    return (k) => b(Math.min(k, STUCK_AT_STEP))
  }
  return sprinklerBehaviour(s.scenario as SprinklerScenario, seed)
}

/** The table `fn` of a slave at step k: each mapped metric's value encoded at its address. */
function table(profile: DeviceProfile, values: Record<string, number>, fn: ModbusFunction): Map<number, number> {
  const words = new Map<number, number>()
  for (const [metric, spec] of Object.entries(profile.modbus!.registers)) {
    if (spec.function !== fn || values[metric] === undefined) continue
    const enc = encodeValue(values[metric], spec)
    if (typeof enc === 'number') words.set(spec.address, enc)
    else for (let i = 0; i < WIDTH[spec.type]; i++) words.set(spec.address + i, enc.readUInt16BE(i * 2))
  }
  return words
}

interface TcpRequest {
  id: number
  unitId: number
  body: { fc: number; start: number; count: number }
}

function frame(req: TcpRequest, pdu: Buffer): Buffer {
  const head = Buffer.alloc(7)
  head.writeUInt16BE(req.id, 0)
  head.writeUInt16BE(0, 2)
  head.writeUInt16BE(pdu.length + 1, 4)
  head.writeUInt8(req.unitId, 6)
  return Buffer.concat([head, pdu])
}

export async function startModbusGateway(opts: ModbusGatewayOptions): Promise<ModbusGatewayHandle> {
  const stepMs = opts.stepMs ?? 1000
  const t0 = Date.now()
  const slaves = new Map(
    opts.slaves.map((s) => [s.unitId, { spec: { ...s }, behaviour: behaviourOf(s), fault: { kind: 'none' } as Fault, pinned: {} as Record<string, number> }])
  )
  const sockets = new Set<net.Socket>()
  const netServer = net.createServer()
  netServer.on('connection', (socket) => {
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
  })
  // No buffers: every read goes to the handlers below, which answer per unit id.
  const server = new ModbusTCPServer(netServer, { coils: undefined, discrete: undefined, holding: undefined, input: undefined } as never)

  const answer = (fn: ModbusFunction) => (request: unknown, cb: (b: Buffer) => void) => {
    const req = request as TcpRequest
    const slave = slaves.get(req.unitId)
    const exception = (code: number) => cb(frame(req, Buffer.from([FC[fn] | 0x80, code])))
    if (!slave) return exception(GATEWAY_TARGET_FAILED)
    const fault = slave.fault
    if (fault.kind === 'silent') return
    if (fault.kind === 'drop') {
      for (const s of sockets) s.destroy()
      return
    }
    if (fault.kind === 'exception') return exception(fault.code)
    const { start, count } = req.body
    if (fault.kind === 'malformed') return cb(frame(req, Buffer.concat([Buffer.from([FC[fn], count * 2 + 4]), Buffer.alloc(count * 2)])))
    const profile = profileOf(slave.spec.kind === 'tank' ? 'water_level' : 'sprinkler_pressure')
    const values = { ...slave.behaviour(Math.floor((Date.now() - t0) / stepMs)).values, ...slave.pinned }
    const words = table(profile, values, fn)
    // Only the mapped block exists on this slave, like a real transmitter's register table.
    const last = Math.max(-1, ...words.keys())
    if (start + count - 1 > last) return exception(ILLEGAL_DATA_ADDRESS)
    if (fn === 'coils' || fn === 'discrete_inputs') {
      const bits = Buffer.alloc(Math.ceil(count / 8))
      for (let i = 0; i < count; i++) if (words.get(start + i)) bits[i >> 3]! |= 1 << (i & 7)
      return cb(frame(req, Buffer.concat([Buffer.from([FC[fn], bits.length]), bits])))
    }
    const data = Buffer.alloc(count * 2)
    for (let i = 0; i < count; i++) data.writeUInt16BE(words.get(start + i) ?? 0, i * 2)
    cb(frame(req, Buffer.concat([Buffer.from([FC[fn], data.length]), data])))
  }
  server.on('readCoils', answer('coils'))
  server.on('readDiscreteInputs', answer('discrete_inputs'))
  server.on('readHoldingRegisters', answer('holding_registers'))
  server.on('readInputRegisters', answer('input_registers'))

  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject)
    netServer.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const port = (netServer.address() as net.AddressInfo).port
  return {
    port,
    setFault(unitId, fault) {
      for (const [id, s] of slaves) if (unitId === 'all' || id === unitId) s.fault = fault
    },
    setScenario(unitId, scenario) {
      const s = slaves.get(unitId)
      if (!s) throw new Error(`no unit ${unitId}`)
      const valid: readonly string[] = s.spec.kind === 'tank' ? TANK_SCENARIOS : PRESSURE_SCENARIOS
      if (!valid.includes(scenario)) throw new Error(`scenario ${scenario} is not one of ${valid.join(', ')}`)
      s.spec = { ...s.spec, scenario } as SlaveSpec
      s.behaviour = behaviourOf(s.spec)
    },
    setValue(unitId, metric, value) {
      const s = slaves.get(unitId)
      if (!s) throw new Error(`no unit ${unitId}`)
      if (value === null) delete s.pinned[metric]
      else s.pinned[metric] = value
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => netServer.close(() => resolve()))
    }
  }
}

/** Apply one control line to the gateways; returns the reply to print. */
export function control(line: string, gateways: ModbusGatewayHandle[]): string {
  const [cmd, unitRaw, what, arg] = line.trim().split(/\s+/)
  if (!cmd) return ''
  const unit = unitRaw === 'all' ? 'all' : Number(unitRaw)
  if (cmd === 'fault' && (unit === 'all' || Number.isInteger(unit))) {
    let fault: Fault | null = null
    if (what === 'none' || what === 'silent' || what === 'drop' || what === 'malformed') fault = { kind: what }
    else if (what === 'exception' && /^\d+$/.test(arg ?? '')) fault = { kind: 'exception', code: Number(arg) }
    if (fault) {
      for (const g of gateways) g.setFault(unit, fault)
      return `ok fault ${unitRaw} ${what}${arg ? ` ${arg}` : ''}`
    }
  }
  if (cmd === 'scenario' && Number.isInteger(unit) && what) {
    try {
      for (const g of gateways) g.setScenario(unit as number, what)
      return `ok scenario ${unitRaw} ${what}`
    } catch (err) {
      return `error ${(err as Error).message}`
    }
  }
  return 'commands: fault <unit|all> none|silent|drop|malformed|exception <code> · scenario <unit> <name> · help'
}

async function main(): Promise<void> {
  const o = new Command('modbus-slaves')
    .description('Simulated Modbus TCP gateways with pressure transmitters and water tanks behind them (control on stdin)')
    .option('--host <host>', 'address to listen on (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'first port; 0 picks free ports', intArg(0, 65535), 1502)
    .option('--gateways <n>', 'gateways, on consecutive ports', intArg(1, 1000), 1)
    .option('--pressure <n>', 'pressure transmitters per gateway (unit ids 1..n)', intArg(0, 247), 4)
    .option('--tanks <n>', 'water tanks per gateway (unit ids after the transmitters)', intArg(0, 247), 1)
    .option('--scenarios <list>', `pressure scenarios, given to units in turn (${PRESSURE_SCENARIOS.join(', ')})`, 'normal')
    .option('--tank-scenarios <list>', `tank scenarios, in turn (${TANK_SCENARIOS.join(', ')})`, 'filling')
    .option('--step <ms>', 'milliseconds per scenario step', intArg(10, 86_400_000), 1000)
    .option('--seed <n>', 'seed of the values', intArg(0, 2 ** 31), 1)
    .parse()
    .opts<{ host: string; port: number; gateways: number; pressure: number; tanks: number; scenarios: string; tankScenarios: string; step: number; seed: number }>()
  const ps = o.scenarios.split(',') as PressureScenario[]
  const ts = o.tankScenarios.split(',') as TankScenario[]
  for (const s of ps) if (!PRESSURE_SCENARIOS.includes(s)) throw new Error(`unknown pressure scenario ${s}`)
  for (const s of ts) if (!TANK_SCENARIOS.includes(s)) throw new Error(`unknown tank scenario ${s}`)
  if (o.pressure + o.tanks > 247) throw new Error('at most 247 unit ids per gateway')
  const gateways: ModbusGatewayHandle[] = []
  for (let g = 0; g < o.gateways; g++) {
    const slaves: SlaveSpec[] = []
    for (let i = 0; i < o.pressure; i++) slaves.push({ unitId: i + 1, kind: 'pressure', scenario: ps[i % ps.length]!, seed: o.seed + g * 1000 + i })
    for (let i = 0; i < o.tanks; i++) {
      slaves.push({ unitId: o.pressure + i + 1, kind: 'tank', scenario: ts[i % ts.length]!, seed: o.seed + g * 1000 + 500 + i })
    }
    gateways.push(await startModbusGateway({ host: o.host, port: o.port === 0 ? 0 : o.port + g, slaves, stepMs: o.step }))
  }
  process.stdout.write(JSON.stringify({ host: o.host, ports: gateways.map((g) => g.port), pressure: o.pressure, tanks: o.tanks }) + '\n')
  const stop = () => void Promise.all(gateways.map((g) => g.close())).finally(() => process.exit(0))
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  createInterface({ input: process.stdin }).on('line', (line) => {
    const reply = control(line, gateways)
    if (reply) process.stderr.write(reply + '\n')
  })
}

if (isMain(import.meta.url)) {
  main().catch((err) => {
    console.error((err as Error).message)
    process.exit(1)
  })
}
