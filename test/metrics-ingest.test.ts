/**
 * /metrics for issue 5's operations list: messages in by kind, and the InfluxDB write latency as a histogram counted
 * in the telemetry writer's thread and published by the main thread; the names README lists are still there.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, waitFor, type TestApp } from './helpers/env.js'

const run = promisify(execFile)
let t: TestApp
beforeAll(async () => {
  t = await startTestApp()
})
afterAll(async () => {
  await t?.dispose()
})

const publish = (dev: { id: string; secret: string }, leaf: string, payload: string) =>
  run('mosquitto_pub', [
    ...['-h', '127.0.0.1', '-p', String(t.mqttPort), '-i', dev.id, '-u', dev.id, '-P', dev.secret, '-q', '1'],
    ...['-t', `v1/devices/${dev.id}/${leaf}`, '-m', payload]
  ])
const metrics = async () => (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text()
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('metrics', () => {
  it('counts messages in by kind and times the InfluxDB writes', async () => {
    const dev = await t.provision('alarm_panel')
    const ts = Date.now() - 1000
    await publish(dev, 'telemetry', JSON.stringify({ ts, seq: 1, values: { backup_battery_v: 26.1 } }))
    await publish(dev, 'events', JSON.stringify({ ts, seq: 2, type: 'fault', point: '1-002', text: 'loop 1 open circuit' }))
    await publish(dev, 'events', JSON.stringify({ ts: ts + 1, seq: 3, type: 'restore', point: '1-002', text: 'loop 1 normal' }))
    await publish(dev, 'status', JSON.stringify('online'))

    const text = await waitFor(async () => {
      const m = await metrics()
      return (value(m, 'firewatch_influx_write_seconds_count') ?? 0) >= 1 && value(m, 'firewatch_messages_accepted_by_kind_total{kind="status"}') === 1 ? m : null
    })
    expect(value(text, 'firewatch_messages_accepted_by_kind_total{kind="telemetry"}')).toBe(1)
    expect(value(text, 'firewatch_messages_accepted_by_kind_total{kind="events"}')).toBe(2)
    expect(value(text, 'firewatch_messages_accepted_total')).toBe(4)
    expect(text).toContain('# TYPE firewatch_influx_write_seconds histogram')
    const count = value(text, 'firewatch_influx_write_seconds_count')!
    // Buckets are cumulative and the last one holds every observation.
    const buckets = text.split('\n').filter((l) => l.startsWith('firewatch_influx_write_seconds_bucket')).map((l) => Number(l.split(' ')[1]))
    expect(buckets).toHaveLength(12)
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
    expect(buckets.at(-1)).toBe(count)
    expect(text).toContain('firewatch_influx_write_seconds_bucket{le="+Inf"}')
    expect(value(text, 'firewatch_influx_write_seconds_sum')).toBeGreaterThan(0)
    expect(value(text, 'firewatch_influx_write_seconds_sum')).toBeLessThan(count * 10)

    for (const name of ['firewatch_points_written_total', 'firewatch_ingest_backlog', 'firewatch_notifications_total', 'firewatch_webhook_deliveries_total{outcome="delivered"}', 'firewatch_forward_119_total{outcome="gave_up"}']) {
      expect(value(text, name), name).not.toBeUndefined()
    }
  })
})
