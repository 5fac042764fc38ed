/** The simulators' helpers that need no broker: seeded randomness, latency percentiles, bounded concurrency. */
import { describe, expect, it } from 'vitest'
import { hash, signed, unit } from '../simulators/lib/random.js'
import { LatencySample } from '../simulators/lib/latency.js'
import { mapLimit } from '../simulators/lib/map-limit.js'

describe('seeded randomness', () => {
  it('is a pure function of its keys, spread over [0, 1) and [-1, 1)', () => {
    expect(hash(7, 3, 'p')).toBe(hash(7, 3, 'p'))
    expect(hash(7, 3, 'p')).not.toBe(hash(7, 3, 'q'))
    expect(hash(2 ** 32, 0)).not.toBe(hash(0, 0))
    const u = Array.from({ length: 10_000 }, (_, k) => unit(1, k))
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...u)).toBeLessThan(1)
    expect(u.reduce((a, b) => a + b) / u.length).toBeCloseTo(0.5, 1)
    const s = Array.from({ length: 10_000 }, (_, k) => signed(1, k))
    expect(Math.min(...s)).toBeLessThan(-0.99)
    expect(Math.max(...s)).toBeGreaterThan(0.99)
  })
})

describe('LatencySample', () => {
  it('gives nearest-rank percentiles, null when empty', () => {
    const l = new LatencySample()
    expect(l.quantile(0.5)).toBeNull()
    for (let ms = 1; ms <= 100; ms++) l.add(ms)
    expect(l.quantile(0.5)).toBe(50)
    expect(l.quantile(0.99)).toBe(99)
    expect(l.quantile(1)).toBe(100)
  })

  it('keeps a bounded, representative sample of a long run', () => {
    const l = new LatencySample(1, 1000)
    for (let i = 0; i < 100_000; i++) l.add(i % 100)
    expect(l.quantile(0.5)).toBeGreaterThanOrEqual(45)
    expect(l.quantile(0.5)).toBeLessThanOrEqual(55)
  })
})

describe('mapLimit', () => {
  it('keeps order and never exceeds the limit', async () => {
    let running = 0
    let peak = 0
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      peak = Math.max(peak, ++running)
      await new Promise((r) => setTimeout(r, x))
      running--
      return x * 10
    })
    expect(out).toEqual([50, 10, 40, 20, 30])
    expect(peak).toBe(2)
  })

  it('starts nothing after a failure and rejects once the started calls settled', async () => {
    const started: number[] = []
    let settled = 0
    const run = mapLimit([1, 2, 3, 4, 5, 6], 2, async (x) => {
      started.push(x)
      await new Promise((r) => setTimeout(r, x === 1 ? 1 : 20))
      settled++
      if (x === 1) throw new Error('boom')
      return x
    })
    await expect(run).rejects.toThrow('boom')
    expect(started).toEqual([1, 2])
    expect(settled).toBe(2)
  })
})
