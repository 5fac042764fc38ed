// The demo's UITDs over GB/T 26875.3 (scripts/demo-gb26875.ts): what their panels' news becomes on the wire and once
// stored, and that only the one with the fire scenario ever sends a fire. The whole demo runs with `npm run demo`.
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { projectRoot } from '../src/config/index.js'
import { loadProfiles } from '../src/ingest/profiles.js'
import { decodeAppData, encodeAppData, translate } from '../src/ingest/gb26875/index.js'
import { PANEL_TIMELINE } from '../simulators/scenarios/panel.js'
import { GB26875_UITDS, UITD_DEMO_SCENARIOS, frameOf, uitdPanelEvents } from '../scripts/demo-gb26875.js'
import type { SimEvent } from '../simulators/lib/behaviour.js'

const profile = loadProfiles(path.join(projectRoot, 'devices')).get('uitd')!
const rx = Date.UTC(2026, 0, 5, 2, 0, 0)

/** The event types the server stores for a panel event sent as the demo's UITD sends it. */
function stored(event: SimEvent): string[] {
  const data = frameOf(event, rx)
  if (!data) return []
  const decoded = decodeAppData(encodeAppData(data))
  if (!decoded.ok) throw new Error(decoded.detail)
  return translate(decoded.value, { profile, serial: 1, rx, utcOffsetMin: 480 }).events.map((e) => e.type)
}

describe('demo UITDs over GB/T 26875.3', () => {
  it('send a panel event as a status frame the server stores as the same event', () => {
    for (const type of ['fire', 'fault', 'isolate', 'restore'] as const) {
      expect(stored({ type, point: '4-05-162', text: '5F kitchen: detector open circuit' })).toEqual([type])
    }
    for (const type of ['power_fault', 'reset', 'restore'] as const) expect(stored({ type, text: 'panel' })).toEqual([type])
    // No status bit for it: nothing sent rather than something else stored.
    expect(frameOf({ type: 'low_battery', point: '1-01-001' }, rx)).toBeNull()
  })

  it('follow the panels\' timelines, and only the fire scenario ever raises a fire', () => {
    const fire = uitdPanelEvents('fire', 1)
    expect(fire(PANEL_TIMELINE.fire.alarm).map((e) => e.type)).toEqual(['fire'])
    expect(uitdPanelEvents('fault', 1)(PANEL_TIMELINE.fault.fault).map((e) => e.type)).toEqual(['fault'])
    for (const scenario of UITD_DEMO_SCENARIOS.filter((s) => s !== 'fire')) {
      for (const seed of [1, 2, 3]) {
        const events = uitdPanelEvents(scenario, seed)
        for (let k = 0; k < 100 * PANEL_TIMELINE.randomEpisode; k++) expect(events(k).some((e) => e.type === 'fire')).toBe(false)
      }
    }
    // The routine one does something now and then.
    const routine = uitdPanelEvents('routine', 1)
    const news = Array.from({ length: 20 * PANEL_TIMELINE.randomEpisode }, (_, k) => routine(k)).flat()
    expect(news.length).toBeGreaterThan(0)
    expect(GB26875_UITDS.filter((u) => u.scenario === 'fire')).toHaveLength(1)
    expect(new Set(GB26875_UITDS.map((u) => u.address)).size).toBe(GB26875_UITDS.length)
  })
})
