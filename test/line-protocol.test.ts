/**
 * The writer's line protocol must be byte for byte what @influxdata/influxdb-client's Point makes for the same
 * reading, and refuse what Point refuses. The reference below is how the writer built points before it wrote lines
 * itself.
 */
import { describe, expect, it } from 'vitest'
import { Point } from '@influxdata/influxdb-client'
import { appendLines, nanos, type LineBatch } from '../src/store/line-protocol.js'
import type { IngestMessage } from '../src/ingest/types.js'

function reference(message: IngestMessage): LineBatch {
  const lines: string[] = []
  message.items.forEach((item, index) => {
    const ts = item.ts ?? message.rx
    const seq = (item as { seq?: number }).seq
    const offset = seq === undefined ? 500_000 + (((message.n ?? 0) * 512 + index) % 500_000) : seq % 500_000
    const measurement = message.type === 'event' ? 'events' : message.type === 'status' ? 'device_status' : 'readings'
    const p = new Point(measurement)
      .tag('device_id', message.deviceId)
      .tag('unit_id', message.unitId)
      .tag('kind', message.kind)
      .timestamp((BigInt(ts) * 1_000_000n + BigInt(offset % 1_000_000)).toString())
    if (seq !== undefined) p.intField('seq', seq)
    if (message.type === 'telemetry') {
      for (const [metric, value] of Object.entries((item as { values: Record<string, number> }).values)) p.floatField(metric, value)
    } else if (message.type === 'event') {
      const ev = item as { type: string; point?: string; text?: string }
      p.tag('type', ev.type).stringField('point', ev.point ?? '').stringField('text', ev.text ?? '')
    } else {
      p.booleanField('online', (item as { status: string }).status === 'online')
    }
    const line = p.toLineProtocol()
    if (line) lines.push(line)
  })
  return { text: lines.join('\n'), lines: lines.length }
}

const referenceLines = (message: IngestMessage): string => reference(message).text

function ours(...messages: IngestMessage[]): LineBatch {
  const batch: LineBatch = { text: '', lines: 0 }
  for (const m of messages) appendLines(batch, m)
  return batch
}

const TRICKY = ['plain', 'a b', 'a,b', 'a=b', 'a"b', "a'b", 'a\\b', 'a\\', '温度 传感器', '🔥,=', 'x\ny', 'tab\there', ' lead', 'trail ']
const base = { deviceId: 'dev-1', unitId: 'unit-1', kind: 'sprinkler_pressure', rx: 1_765_000_000_123 }

const cases: [string, IngestMessage][] = [
  ['a reading', { ...base, type: 'telemetry', items: [{ ts: 1_765_000_000_000, seq: 7, values: { pressure_mpa: 0.32 } }] }],
  [
    'integers, floats, extremes and many metrics, unsorted',
    {
      ...base,
      type: 'telemetry',
      items: [{ ts: 1_765_000_000_001, seq: 123_456_789, values: { z: 3, a: -0, m: 1e21, b: 1.5e-7, c: -12.25, seq: 4.5, '': 1 } }]
    }
  ],
  ['no ts, no seq, numbered', { ...base, n: 987_654, type: 'telemetry', items: [{ values: { a: 1 } }, { values: { b: 2 } }, { values: {} }] }],
  ['no seq, no n', { ...base, type: 'telemetry', items: [{ ts: 5, values: { a: 1 } }] }],
  ['seq 0 and large', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 0, values: { a: 0 } }, { ts: 2 ** 52, seq: 2 ** 40, values: { a: 1 } }] }],
  ['status', { ...base, type: 'status', items: [{ ts: 1_765_000_000_000, status: 'online' }, { ts: 1_765_000_000_001, status: 'offline' }] }],
  [
    'events',
    {
      ...base,
      type: 'event',
      items: [
        { ts: 1_765_000_000_000, seq: 1, type: 'fire', point: 'L1-23', text: 'Smoke "zone 3", floor=2 \\ stair' } as never,
        { ts: 1_765_000_000_001, type: 'fault' } as never,
        { ts: 1_765_000_000_002, seq: 3, type: '', point: '', text: '' } as never
      ]
    }
  ],
  ['empty unit tag is left out', { ...base, unitId: '', type: 'telemetry', items: [{ ts: 9, seq: 1, values: { a: 1 } }] }],
  ['string numbers', { ...base, type: 'telemetry', items: [{ ts: '1765000000000' as never, seq: '12' as never, values: { a: '2.5' as never } }] }]
]

for (const t of TRICKY) {
  cases.push([
    `tricky ${JSON.stringify(t)} everywhere`,
    {
      deviceId: t,
      unitId: t,
      kind: t,
      rx: 1_765_000_000_000,
      type: 'event',
      items: [{ ts: 1_765_000_000_000, seq: 2, type: t, point: t, text: t } as never]
    }
  ])
  cases.push([
    `tricky ${JSON.stringify(t)} as a metric`,
    { deviceId: t, unitId: 'u', kind: 'k', rx: 1, type: 'telemetry', items: [{ ts: 1_765_000_000_000, seq: 2, values: { [t]: 1, [`${t}2`]: 2.5 } }] }
  ])
}

describe('line protocol for ingest messages', () => {
  for (const [name, message] of cases) {
    it(`matches Point for ${name}`, () => {
      expect(ours(message)).toEqual(reference(message))
    })
  }

  it('joins messages with one newline and counts lines', () => {
    const [, a] = cases[0]!
    const [, b] = cases[5]!
    const batch = ours(a, b)
    expect(batch.text).toBe(`${referenceLines(a)}\n${referenceLines(b)}`)
    expect(batch.lines).toBe(3)
  })

  it('the same device with another unit gets the new unit tag', () => {
    const [, a] = cases[0]!
    const moved = { ...a, unitId: 'unit-2' } as IngestMessage
    expect(ours(a).text).toBe(referenceLines(a))
    expect(ours(moved).text).toBe(referenceLines(moved))
  })

  for (const [name, bad] of [
    ['NaN value', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 1, values: { a: NaN } }] }],
    ['infinite value', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 1, values: { a: Infinity } }] }],
    ['text value', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 1, values: { a: 'high' } }] }],
    ['seq not a number', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 'x', values: { a: 1 } }] }],
    ['fractional ts', { ...base, type: 'telemetry', items: [{ ts: 1.5, seq: 1, values: { a: 1 } }] }],
    ['values missing', { ...base, type: 'telemetry', items: [{ ts: 1, seq: 1 }] }],
    ['item null', { ...base, type: 'telemetry', items: [null] }]
  ] as [string, IngestMessage][]) {
    it(`refuses what Point refuses: ${name}`, () => {
      expect(() => referenceLines(bad)).toThrow()
      expect(() => ours(bad)).toThrow()
    })
  }

  it('nanosecond timestamps equal the BigInt arithmetic', () => {
    const ms = [1, 9, 10, 999, 1_765_000_000_000, 2 ** 53 - 1, 0, -5, 1e300]
    const offsets = [0, 1, 9, 10, 99_999, 499_999, 500_000, 999_999, 1_000_000, 1_234_567, -3]
    for (const m of ms) {
      for (const o of offsets) {
        let expected: string | Error
        try {
          expected = (BigInt(m) * 1_000_000n + BigInt(o % 1_000_000)).toString()
        } catch (err) {
          expected = err as Error
        }
        if (expected instanceof Error) expect(() => nanos(m, o)).toThrow()
        else expect(nanos(m, o)).toBe(expected)
      }
    }
  })
})
