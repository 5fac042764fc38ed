/**
 * The two read paths that grow with the city, at city scale (test/helpers/city-scale.ts: 50,000 units, 150,000
 * devices, 200,000 resolved alerts and ~8,000 open ones, written with generate_series): the risk ranking and a draw's
 * candidates must come back complete and in order page after page (no duplicate, no gap), the ranking's counts must
 * be the units' own, and the ranking's plan must read alerts through an index for the page's units only. No
 * wall-clock assertion: timings are in docs/BENCHMARKS.md ("Read paths"), measured by bench/read-paths.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type ApiCall, type TestApp } from './helpers/env.js'
import { SCALE_CITY, scaleDistrict, scaleUnit, seedCity } from './helpers/city-scale.js'
import { RANKING_SQL, rankingArgs, rankUnits, type RankingKey } from '../src/alerts/risk-ranking.js'
import type { RiskService } from '../src/alerts/risk.js'
import type { Pool } from '../src/store/postgres.js'
import type { RankedUnit } from '../schemas/risk-ranking.js'
import type { Draw, DrawCandidate, DrawReplay } from '../schemas/inspections.js'

const UNITS = 50_000
const ALERTS = 200_000

let t: TestApp
let pool: Pool

interface Page<T> {
  items: T[]
  total: number
  nextCursor: string | null
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Actual Loops': number
  Plans?: PlanNode[]
}
const flatten = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(flatten)]

/** Every page of a cursor-paged list, in order. */
async function walk<T>(api: ApiCall, path: string, limit: number, maxPages = Infinity): Promise<{ pages: Page<T>[]; items: T[] }> {
  const pages: Page<T>[] = []
  let cursor: string | null = null
  do {
    const sep = path.includes('?') ? '&' : '?'
    const r: { status: number; body: Page<T> } = await api('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200)
    pages.push(r.body)
    cursor = r.body.nextCursor
  } while (cursor && pages.length < maxPages)
  return { pages, items: pages.flatMap((p) => p.items) }
}

/** The ranking as PostgreSQL orders it with no index or cursor involved: score descending, then unit id. */
async function expectedRanking(jurisdiction: string): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT u.id FROM units u JOIN jurisdictions j ON j.id = u.jurisdiction_id LEFT JOIN unit_risk r ON r.unit_id = u.id
      WHERE $1 = ANY (j.ancestors) ORDER BY r.score DESC NULLS LAST, u.id`,
    [jurisdiction]
  )
  return rows.map((r) => r.id)
}

beforeAll(async () => {
  t = await startTestApp()
  pool = t.app.risk.deps.pool
  await seedCity(pool, { units: UNITS, alerts: ALERTS })
}, 60_000)
afterAll(async () => {
  await t?.dispose()
}, 60_000)

describe('the risk ranking of a city of 50,000 units', () => {
  it('gives the first pages of the city in order, with each unit’s own counts', async () => {
    const { pages, items } = await walk<RankedUnit>(t.api, '/api/v1/risk', 1000, 3)
    expect(pages.map((p) => [p.items.length, p.total])).toEqual([[1000, UNITS], [1000, UNITS], [1000, UNITS]])
    expect(items.map((u) => u.unitId)).toEqual((await expectedRanking(SCALE_CITY)).slice(0, 3000))
    // Many units share each score (about 495 per score): the walk crosses ties in the middle of a page and at its edges.
    expect(new Set(items.map((u) => u.score)).size).toBeLessThan(10)

    const { rows } = await pool.query<{ id: string; open_alerts: number; open_fire: number; devices: number; offline: number }>(
      `SELECT u.id,
              (SELECT count(*)::int FROM alerts a WHERE a.unit_id = u.id AND a.status <> 'resolved') AS open_alerts,
              (SELECT count(*)::int FROM alerts a WHERE a.unit_id = u.id AND a.status <> 'resolved' AND a.class = 'fire') AS open_fire,
              (SELECT count(*)::int FROM devices d WHERE d.unit_id = u.id) AS devices,
              (SELECT count(*)::int FROM devices d WHERE d.unit_id = u.id AND NOT d.online) AS offline
         FROM units u WHERE u.id = ANY ($1::text[])`,
      [items.map((u) => u.unitId)]
    )
    const want = new Map(rows.map((r) => [r.id, [r.open_alerts, r.open_fire, r.devices, r.offline]]))
    expect(items.map((u) => [u.unitId, [u.openAlerts, u.openFireAlerts, u.devices, u.offlineDevices]])).toEqual(items.map((u) => [u.unitId, want.get(u.unitId)]))
    // The seed's open alerts are in there: every 7th unit has an open trouble, every 50th an open fire.
    expect(items.some((u) => u.openFireAlerts === 1)).toBe(true)
    expect(items.some((u) => u.openAlerts === 2)).toBe(true)
  }, 30_000)

  it("walks a district's 5,000 units to the end without a duplicate or a gap", async () => {
    const { pages, items } = await walk<RankedUnit>(t.api, `/api/v1/risk?jurisdictionId=${scaleDistrict(3)}`, 700)
    expect(pages).toHaveLength(8)
    expect(pages.at(-1)!.nextCursor).toBeNull()
    expect(pages.every((p) => p.total === 5000)).toBe(true)
    const ids = items.map((u) => u.unitId)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids).toEqual(await expectedRanking(scaleDistrict(3)))
  }, 30_000)

  it('counts alerts and devices for the page’s units only, through their indexes', async () => {
    for (const [q, scope] of [
      [{ limit: 100, offset: 0 }, null],
      [{ limit: 100, offset: 0, after: { score: 40, unitId: scaleUnit(12345) } }, null],
      [{ limit: 1000, offset: 0, jurisdictionId: scaleDistrict(3) }, null],
      [{ limit: 100, offset: 0 }, scaleDistrict(7)]
    ] as const) {
      const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${RANKING_SQL}`, rankingArgs(q, scope))
      const nodes = flatten(rows[0]!['QUERY PLAN'][0].Plan)
      const label = JSON.stringify([q, scope])
      expect(nodes.filter((n) => n['Node Type'] === 'Seq Scan' && ['alerts', 'devices'].includes(n['Relation Name']!)), label).toEqual([])
      // One index probe per unit of the page (limit + 1 read to know whether a next page exists), not one per unit in scope.
      for (const index of ['alerts_one_open', 'devices_unit']) {
        const scans = nodes.filter((n) => n['Index Name'] === index)
        expect(scans.length, `${label} ${index}`).toBe(1)
        expect(scans[0]!['Actual Loops'], `${label} ${index}`).toBeLessThanOrEqual(q.limit + 1)
      }
      // The city-wide ranking comes off the ranking index in order, without sorting every unit's score.
      if (scope === null && !('jurisdictionId' in q)) expect(nodes.some((n) => n['Index Name'] === 'unit_risk_rank'), label).toBe(true)
    }
  })

  it('ranks units never scored last, by id, and the cursor crosses into them', async () => {
    // A street of 500 units, 120 of which lose their score. Called directly with scoring on demand turned off: through
    // the API the first page would score them again.
    const street = 'sc-d9-s9'
    const { rows } = await pool.query<{ id: string }>(`SELECT id FROM units WHERE jurisdiction_id = $1 ORDER BY id DESC LIMIT 120`, [street])
    await pool.query('DELETE FROM unit_risk WHERE unit_id = ANY ($1::text[])', [rows.map((r) => r.id)])
    const risk = { deps: t.app.risk.deps, schedule: async () => undefined } as unknown as RiskService
    const walk = async (limit: number) => {
      const walked: RankedUnit[] = []
      let after: RankingKey | undefined
      for (;;) {
        const page = await rankUnits(risk, { jurisdictionId: street, limit, offset: 0, after }, null)
        expect(page.total).toBe(500)
        walked.push(...page.items)
        if (!page.next) return walked
        after = page.next
      }
    }
    // Pages of 90 cross from the scored units into the rest inside a page; pages of 95 end on the last scored unit.
    const walked = await walk(90)
    expect(walked.map((u) => u.unitId)).toEqual(await expectedRanking(street))
    expect((await walk(95)).map((u) => u.unitId)).toEqual(walked.map((u) => u.unitId))
    expect(walked.slice(-120).every((u) => u.score === null && u.level === null)).toBe(true)
    expect(walked.slice(-120).map((u) => u.unitId)).toEqual(rows.map((r) => r.id).reverse())
    // The deprecated offset gives the same units.
    const byOffset = await rankUnits(risk, { jurisdictionId: street, limit: 50, offset: 360 }, null)
    expect(byOffset.items.map((u) => u.unitId)).toEqual(walked.slice(360, 410).map((u) => u.unitId))
  })
})

describe("a draw over the city's 50,000 units", () => {
  it('gives its candidates page by page, complete and in order, and still replays from the whole list', async () => {
    const r = await t.api<Draw>('POST', '/api/v1/inspections/draws', { jurisdictionId: SCALE_CITY, targets: 20, inspectorsPerTarget: 1, seed: 'city-scale' })
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(201)
    const draw = r.body
    expect(draw.candidateCount).toBe(UNITS)
    expect(draw.targets).toHaveLength(20)
    // The draw itself stays small: no candidate list in it.
    expect(JSON.stringify(draw).length).toBeLessThan(20_000)

    const { pages, items } = await walk<DrawCandidate>(t.api, `/api/v1/inspections/draws/${draw.id}/candidates`, 1000)
    expect(pages).toHaveLength(UNITS / 1000)
    expect(pages.every((p) => p.total === UNITS && p.items.length === 1000)).toBe(true)
    const ids = items.map((c) => c.unitId)
    expect(ids).toEqual(Array.from({ length: UNITS }, (_, i) => scaleUnit(i)))
    expect(items.every((c) => c.weight >= 1 && c.weight <= 16)).toBe(true)

    const replay = await t.api<DrawReplay>('GET', `/api/v1/inspections/draws/${draw.id}/replay`)
    expect(replay.body).toMatchObject({ matches: true, weightsMismatched: [] })
    expect(replay.body.replayed.map((x) => x.unitId)).toEqual(draw.targets.map((x) => x.unitId))
  }, 60_000)
})
