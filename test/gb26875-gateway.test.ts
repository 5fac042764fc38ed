/** The GB/T 26875.3 gateway over real TCP sockets, with the ingest log and the registry stubbed. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import path from 'node:path'
import { pino } from 'pino'
import { projectRoot } from '../src/config/index.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { Rejections } from '../src/ingest/rejections.js'
import type { DeviceIdentity, IngestMessage } from '../src/ingest/types.js'
import { Command, encodeAppData, encodeFrame, startGb26875Gateway, type Gb26875Gateway } from '../src/ingest/gb26875/index.js'
import { UitdClient } from '../simulators/lib/gb26875-client.js'
import { waitFor } from './helpers/env.js'

const profiles = loadProfiles(path.join(projectRoot, 'devices'))
const ADDRESS = '385b01000000'
const DEVICE: DeviceIdentity = { deviceId: 'uitd-1', unitId: 'u-1', profile: 'uitd' }
const now = () => {
  const d = new Date(Date.now() + 480 * 60_000)
  return { second: d.getUTCSeconds(), minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, year: d.getUTCFullYear() }
}

let gateway: Gb26875Gateway
let appended: IngestMessage[]
let appendGate: Promise<unknown>
let appendFails: boolean
let rejections: Rejections
let presence: string[]
const clients: UitdClient[] = []

beforeEach(async () => {
  appended = []
  appendGate = Promise.resolve()
  appendFails = false
  presence = []
  const log = pino({ level: 'silent' })
  rejections = new Rejections(log)
  gateway = await startGb26875Gateway({
    host: '127.0.0.1',
    port: 0,
    findDevice: async (address) => (address === ADDRESS ? DEVICE : null),
    profiles,
    ingestLog: {
      append: async (m: IngestMessage) => {
        await appendGate
        if (appendFails) throw new Error('Redis away')
        appended.push(m)
        return '1-0'
      }
    },
    presence: {
      connected: (id) => presence.push(`connected ${id}`),
      disconnected: (id) => presence.push(`disconnected ${id}`),
      seen: (id) => presence.push(`seen ${id}`)
    },
    rejections,
    log
  })
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await gateway.close()
})

async function connect(address = ADDRESS): Promise<UitdClient> {
  const c = await UitdClient.connect({ host: '127.0.0.1', port: gateway.port, address, timeoutMs: 2000 })
  clients.push(c)
  return c
}

const fire = (status = 0b11) => ({
  type: 2 as const,
  objects: [{ sysType: 1, sysAddr: 2, compType: 42, compAddr: 34, status, description: '三层东侧走廊', time: now() }]
})

describe('GB/T 26875.3 gateway', () => {
  it('confirms a fire with the serial echoed only once the append resolved, as an event of type fire', async () => {
    const c = await connect()
    let release!: () => void
    appendGate = new Promise<void>((r) => (release = r))
    const frame = c.frame(Command.sendData, encodeAppData(fire()))
    const answer = c.send(frame)
    await new Promise((r) => setTimeout(r, 100))
    expect(c.unexpected).toEqual([])
    expect(appended).toEqual([])
    release()
    expect(await answer).toMatchObject({ command: Command.confirm, serial: frame.serial, source: '000000000000', destination: ADDRESS })
    expect(appended).toHaveLength(1)
    expect(appended[0]).toMatchObject({
      deviceId: 'uitd-1',
      unitId: 'u-1',
      type: 'event',
      items: [{ type: 'fire', point: '1-2-42-34', text: '三层东侧走廊' }]
    })
    expect(presence).toEqual(['connected uitd-1', 'seen uitd-1'])
    // The frame's serial in the high bits, above 20 bits of the content's hash (to-ingest.ts).
    expect(Math.floor((appended[0]!.items[0] as { seq: number }).seq / 2 ** 20)).toBe(frame.serial * 4096)
  })

  it('maps fault, disabled and supervisory bits, and a status without them to a restore', async () => {
    const c = await connect()
    await c.sendData(fire(0b1_0101)) // normal, fault, supervisory
    await c.sendData(fire(0b1001)) // normal, disabled
    await c.sendData(fire(0b1)) // normal
    expect(appended.map((m) => (m.items as { type: string }[]).map((i) => i.type))).toEqual([['fault', 'supervisory'], ['isolate'], ['restore']])
    // Two events of one status word share a ts: each needs its own seq, or the ingest log drops the second as a resend.
    const [fault, supervisory] = appended[0]!.items as { seq: number; ts: number }[]
    expect(fault!.ts).toBe(supervisory!.ts)
    expect(fault!.seq).not.toBe(supervisory!.seq)
  })

  it('gives no confirm when the append fails, and closes the connection', async () => {
    const c = await connect()
    appendFails = true
    expect(await c.sendData(fire())).toBeNull()
    expect(c.socket.destroyed || c.socket.readableEnded).toBe(true)
  })

  it('denies a bad checksum with the serial echoed, stores nothing, and carries on', async () => {
    const c = await connect()
    const bytes = encodeFrame(c.frame(Command.sendData, encodeAppData(fire()), 77))
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1
    expect(await c.request(bytes, 77)).toMatchObject({ command: Command.deny, serial: 77 })
    expect(appended).toEqual([])
    expect(rejections.counts.bad_frame).toBe(1)
    expect(await c.sendData(fire())).toMatchObject({ command: Command.confirm })
    expect(appended).toHaveLength(1)
  })

  it('denies an unknown address, counts it, and closes the connection', async () => {
    const c = await connect('aabbccddeeff')
    expect(await c.sendData(fire())).toMatchObject({ command: Command.deny, destination: 'aabbccddeeff' })
    expect(rejections.counts.unknown_device).toBe(1)
    expect(appended).toEqual([])
    await waitFor(async () => c.socket.destroyed || c.socket.readableEnded)
  })

  it('answers an unknown address once, however many frames it sent in one go', async () => {
    const c = await connect('aabbccddeeff')
    const frames = [1, 2, 3].map((serial) => encodeFrame(c.frame(Command.sendData, Buffer.alloc(0), serial)))
    expect(await c.request(Buffer.concat(frames), 1)).toMatchObject({ command: Command.deny })
    await waitFor(async () => c.socket.destroyed || c.socket.readableEnded)
    expect(rejections.counts.unknown_device).toBe(1)
    expect(c.unexpected).toEqual([])
  })

  it('confirms heartbeats and time syncs, and keeps presence', async () => {
    const c = await connect()
    expect(await c.heartbeat()).toMatchObject({ command: Command.confirm })
    expect(await c.send(c.frame(Command.control, Buffer.from([90, 1, 0, 0, 0, 1, 1, 26])))).toMatchObject({ command: Command.confirm })
    expect(appended).toEqual([])
    expect(presence).toEqual(['connected uitd-1', 'seen uitd-1', 'seen uitd-1'])
  })

  it('stores a pressure as pressure_mpa, and refuses an analog type without a metric', async () => {
    const c = await connect()
    const analog = (analogType: number, raw: number) => ({ sysType: 12, sysAddr: 1, compType: 99, compAddr: 5, analogType, raw, time: now() })
    const answer = await c.sendData({ type: 3, objects: [analog(4, 3), analog(5, 3200), analog(12, 4)] })
    expect(answer).toMatchObject({ command: Command.confirm })
    expect(appended).toHaveLength(1)
    expect(appended[0]!.type).toBe('telemetry')
    expect((appended[0]!.items as { values: object }[]).map((i) => i.values)).toEqual([{ pressure_mpa: 0.3 }, { pressure_mpa: 0.32 }])
    expect(rejections.counts.unknown_analog_type).toBe(1)
  })

  it('uses the device clock for ts when it is plausible, the receive time otherwise', async () => {
    const c = await connect()
    const time = { second: 3, minute: 2, hour: 9, day: 7, month: 12, year: 2026 }
    const within = Math.abs(Date.UTC(2026, 11, 7, 1, 2, 3) - Date.now()) < 300 * 24 * 3600 * 1000
    await c.sendData({ type: 2, objects: [{ ...fire().objects[0]!, time }] })
    await c.sendData({ type: 2, objects: [{ ...fire().objects[0]!, time: { ...time, month: 0x12 } }] })
    const [a, b] = appended.map((m) => (m.items[0] as { ts?: number }).ts)
    expect(a).toBe(within ? Date.UTC(2026, 11, 7, 1, 2, 3) : undefined)
    expect(b).toBeUndefined()
  })

  it('lets a newer connection from the same address replace the older', async () => {
    const a = await connect()
    expect(await a.heartbeat()).toMatchObject({ command: Command.confirm })
    const b = await connect()
    expect(await b.heartbeat()).toMatchObject({ command: Command.confirm })
    await waitFor(async () => a.socket.destroyed || a.socket.readableEnded)
    expect(gateway.connected).toBe(1)
    await new Promise((r) => setTimeout(r, 50))
    // The older connection closing does not mark the device offline (Presence ignores a stale connection).
    expect(presence.filter((p) => p.startsWith('connected'))).toHaveLength(2)
  })

  it('confirms application data it cannot read and counts it, so the UITD does not resend it forever', async () => {
    const c = await connect()
    expect(await c.send(c.frame(Command.sendData, Buffer.from([3, 1, 0])))).toMatchObject({ command: Command.confirm })
    expect(rejections.counts.schema).toBe(1)
    expect(appended).toEqual([])
  })
})
