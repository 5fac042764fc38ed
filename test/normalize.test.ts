import { describe, expect, it } from 'vitest'
import path from 'node:path'
import { normalize } from '../src/ingest/normalize.js'
import { loadProfiles, parseProfile } from '../src/ingest/profiles.js'
import { projectRoot } from '../src/config/index.js'
import { authorizeDevicePublish, authorizeDeviceSubscribe } from '../src/broker/topics.js'

const profiles = loadProfiles(path.join(projectRoot, 'devices'))
const device = { deviceId: 'p1', unitId: 'u1', profile: 'sprinkler_pressure' }
const pressure = profiles.get('sprinkler_pressure')!
const rx = Date.UTC(2026, 10, 22, 8, 0, 0)
const run = (type: 'telemetry' | 'event' | 'status', payload: unknown, profile = pressure) =>
  normalize(device, profile, type, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), rx)

describe('device profiles', () => {
  it('ships the five kinds with units, ranges and a patrol period within GB 50440’s 2 h', () => {
    expect([...profiles.keys()].sort()).toEqual(['alarm_panel', 'smoke_detector', 'sprinkler_pressure', 'uitd', 'water_level'])
    for (const p of profiles.values()) expect(p.patrolPeriodS).toBeLessThanOrEqual(7200)
    expect(pressure.metrics.pressure_mpa).toMatchObject({ unit: 'MPa', safe: { min: 0.05, max: 1.2 } })
  })

  it('refuses an invalid profile naming the field', () => {
    const text = 'name: x\nkind: uitd\ndescription: d\nprotocols: [mqtt]\npatrolPeriodS: 99999\nmetrics: {}\nevents: []\n'
    expect(() => parseProfile(text, 'x.yaml')).toThrow(/x.yaml: \/patrolPeriodS must be <= 7200/)
    const swapped = text.replace('99999', '60').replace('metrics: {}', 'metrics: { a: { unit: V, min: 5, max: 1 } }')
    expect(() => parseProfile(swapped, 'y.yaml')).toThrow(/\/metrics\/a min must be below max/)
  })
})

describe('normalize', () => {
  it('accepts a single reading and fills nothing the device did not send', () => {
    const r = run('telemetry', { seq: 42, values: { pressure_mpa: 0.32 } })
    expect(r).toEqual({
      ok: true,
      message: { deviceId: 'p1', unitId: 'u1', kind: 'sprinkler_pressure', rx, type: 'telemetry', items: [{ seq: 42, values: { pressure_mpa: 0.32 } }] }
    })
  })

  it('turns an RFC 3339 ts into epoch ms', () => {
    const r = run('telemetry', { ts: '2026-11-22T07:59:00.500Z', values: { pressure_mpa: 0.3 } })
    expect(r.ok && r.message.items[0]!.ts).toBe(Date.UTC(2026, 10, 22, 7, 59, 0, 500))
  })

  it('accepts arrays up to 500 items and refuses 501', () => {
    const item = { values: { pressure_mpa: 0.3 } }
    expect(run('telemetry', Array(500).fill(item)).ok).toBe(true)
    expect(run('telemetry', Array(501).fill(item))).toMatchObject({ ok: false, reason: 'schema' })
  })

  it.each([
    ['not json', 'invalid_json'],
    [{ values: {} }, 'schema'],
    [{ values: { pressure_mpa: '1' } }, 'schema'],
    [{ seq: -1, values: { pressure_mpa: 0.3 } }, 'schema'],
    [{ ts: 'yesterday', values: { pressure_mpa: 0.3 } }, 'schema'],
    [{ values: { level_m: 1 } }, 'unknown_metric'],
    [{ values: { pressure_mpa: 2.6 } }, 'out_of_range'],
    [{ ts: rx + 25 * 3600_000, values: { pressure_mpa: 0.3 } }, 'ts_in_future'],
    [{ ts: '2000-01-01T00:00:00Z', values: { pressure_mpa: 0.3 } }, 'ts_too_old'],
    [{ ts: '2016-12-31T23:59:60Z', values: { pressure_mpa: 0.3 } }, 'schema'],
    [{ values: { constructor: 1 } }, 'unknown_metric']
  ])('refuses %j as %s', (payload, reason) => {
    expect(run('telemetry', payload)).toMatchObject({ ok: false, reason })
  })

  it('accepts a value outside the safe range but inside the sensor range', () => {
    expect(run('telemetry', { values: { pressure_mpa: 0.01 } }).ok).toBe(true)
    expect(run('telemetry', { values: { pressure_mpa: 1.5 } }).ok).toBe(true)
  })

  it('checks event types against the contract and the profile', () => {
    const panel = profiles.get('alarm_panel')!
    expect(run('event', { type: 'fire', point: '1-02-034', text: '3F east corridor' }, panel).ok).toBe(true)
    expect(run('event', { type: 'explosion' }, panel)).toMatchObject({ ok: false, reason: 'schema' })
    expect(run('event', { type: 'fire' })).toMatchObject({ ok: false, reason: 'event_not_in_profile' })
  })

  it('takes "online" / "offline" as status, nothing else', () => {
    expect(run('status', '"offline"')).toMatchObject({ ok: true, message: { items: [{ ts: rx, status: 'offline' }] } })
    expect(run('status', '"asleep"')).toMatchObject({ ok: false, reason: 'schema' })
  })
})

describe('topic ACL', () => {
  it('lets a device publish only its own upward topics', () => {
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/telemetry')).toEqual({ ok: true, type: 'telemetry' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/events')).toEqual({ ok: true, type: 'event' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/status')).toEqual({ ok: true, type: 'status' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p2/telemetry')).toMatchObject({ ok: false, reason: 'acl_publish' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/commands')).toMatchObject({ ok: false, reason: 'acl_publish' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/other')).toMatchObject({ ok: false, reason: 'unknown_topic' })
    expect(authorizeDevicePublish('p1', 'v1/devices/p1/telemetry/x')).toMatchObject({ ok: false })
  })

  it('lets a device subscribe only to its own commands', () => {
    expect(authorizeDeviceSubscribe('p1', 'v1/devices/p1/commands')).toBe(true)
    expect(authorizeDeviceSubscribe('p1', 'v1/devices/+/commands')).toBe(false)
    expect(authorizeDeviceSubscribe('p1', 'v1/devices/p1/#')).toBe(false)
  })
})
