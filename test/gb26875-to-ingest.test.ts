import { describe, expect, it } from 'vitest'
import path from 'node:path'
import { projectRoot } from '../src/config/index.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { timeAt, translate } from '../src/ingest/gb26875/index.js'

const profiles = loadProfiles(path.join(projectRoot, 'devices'))
const rx = Date.UTC(2026, 11, 7, 1, 0, 0)
const ctx = { profile: profiles.get('uitd')!, serial: 7, rx, utcOffsetMin: 480 }
const time = timeAt(rx - 5000, 480)

describe('GB/T 26875.3 frame content → device-contract items', () => {
  it('maps system status bits to events, power faults to one, and a status without them to a restore', () => {
    const system = (status: number) => translate({ type: 1, objects: [{ sysType: 1, sysAddr: 3, status, time }] }, ctx).events.map((e) => e.type)
    expect(system((1 << 1) | (1 << 8) | (1 << 9))).toEqual(['fire', 'power_fault'])
    expect(system((1 << 10) | 1)).toEqual(['fault'])
    expect(system(1 << 13)).toEqual(['reset'])
    expect(system(1)).toEqual(['restore'])
    const [e] = translate({ type: 1, objects: [{ sysType: 1, sysAddr: 3, status: 2, time }] }, ctx).events
    expect(e).toMatchObject({ point: '1-3', ts: rx - 5000 })
  })

  it('gives every item of a frame its own seq, the same again for the same frame', () => {
    const data = { type: 1 as const, objects: [{ sysType: 1, sysAddr: 3, status: 0b10110, time }, { sysType: 1, sysAddr: 4, status: 0b10, time }] }
    const seqs = translate(data, ctx).events.map((e) => e.seq)
    expect(new Set(seqs).size).toBe(4)
    expect(translate(data, ctx).events.map((e) => e.seq)).toEqual(seqs)
    // In frame order: the place is above the content hash.
    expect([...seqs].sort((a, b) => a! - b!)).toEqual(seqs)
  })

  it('leaves out a ts the device clock cannot give, and keeps operation records and clocks out of storage', () => {
    const far = timeAt(rx + 2 * 86_400_000, 480)
    const [e] = translate({ type: 2, objects: [{ sysType: 1, sysAddr: 1, compType: 42, compAddr: 1, status: 0b11, description: '', time: far }] }, ctx).events
    expect(e).not.toHaveProperty('ts')
    expect(e).not.toHaveProperty('text')
    const ops = translate({ type: 24, objects: [{ flags: 1, operator: 2, time }] }, ctx)
    expect(ops).toEqual({ events: [], readings: [], refused: [], unstored: 1 })
  })

  it('refuses a mapped analog value whose metric the profile lacks', () => {
    const r = translate({ type: 3, objects: [{ sysType: 1, sysAddr: 1, compType: 1, compAddr: 1, analogType: 2, raw: 150, time }] }, ctx)
    expect(r.readings).toEqual([])
    expect(r.refused).toEqual([expect.objectContaining({ reason: 'unknown_metric' })])
    const tank = translate({ type: 3, objects: [{ sysType: 11, sysAddr: 1, compType: 1, compAddr: 1, analogType: 2, raw: 150, time }] }, { ...ctx, profile: profiles.get('water_level')! })
    expect(tank.readings[0]!.values).toEqual({ level_m: 1.5 })
  })
})
