import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Schedule } from '../src/ingest/modbus/schedule.js'

describe('poll schedule', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    vi.setSystemTime(1_700_000_000_000)
  })
  afterEach(() => vi.useRealTimers())

  it('ticks at phase + k × interval and goes on when the wall clock is stepped back', () => {
    const ticks: number[] = []
    const s = new Schedule(1000, 250, (t) => ticks.push(t))
    s.start()
    vi.advanceTimersByTime(3000)
    expect(ticks).toEqual([1_700_000_000_250, 1_700_000_001_250, 1_700_000_002_250])
    // An hour back (NTP, an operator): the waits run on the monotonic clock, the ticks are named by the wall clock.
    vi.setSystemTime(Date.now() - 3_600_000)
    vi.advanceTimersByTime(3000)
    expect(ticks.slice(3)).toEqual([1_699_996_403_250, 1_699_996_404_250, 1_699_996_405_250])
    s.stop()
  })

  it('skips a tick more than one interval late instead of running it', () => {
    vi.useRealTimers()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    vi.setSystemTime(1_700_000_000_000)
    // A monotonic clock of our own, to block the "event loop" without the timers noticing.
    let mono = 0
    vi.spyOn(performance, 'now').mockImplementation(() => mono)
    const ticks: number[] = []
    const s = new Schedule(1000, 0, (t) => ticks.push(t))
    s.start()
    mono += 1000
    vi.advanceTimersByTime(1000)
    expect(ticks).toEqual([1_700_000_001_000])
    // Blocked until +4.5 s: the ticks of +2 s and +3 s are more than one interval late and skipped; +4 s runs, half
    // an interval late, named by its planned time; the schedule stays on its slots.
    mono += 3500
    vi.setSystemTime(Date.now() + 2500)
    vi.advanceTimersToNextTimer()
    expect(ticks.slice(1)).toEqual([1_700_000_004_000])
    expect(s.skipped).toBe(2)
    mono += 500
    vi.advanceTimersByTime(500)
    expect(ticks.slice(2)).toEqual([1_700_000_005_000])
    s.stop()
    vi.restoreAllMocks()
  })
})
