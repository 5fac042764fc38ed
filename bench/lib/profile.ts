/** Summarises a V8 CPU profile (.cpuprofile): self time by package / area and by function, inclusive time of src/. */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  totalMs: number
  /** Share of samples in each area (package, node core area, Firewatch src file, GC, idle), biggest first. */
  areas: { area: string; pct: number }[]
  /** Functions with the most self time. */
  functions: { fn: string; pct: number }[]
  /** Firewatch src/ functions with the most inclusive time (themselves plus what they call). */
  srcInclusive: { fn: string; pct: number }[]
}

function area(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'GC'
    if (fn === '(idle)') return 'idle'
    if (fn === '(program)') return 'native (program)'
    return fn || 'native'
  }
  const nm = url.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/')
    const mod = parts[0] === 'internal' ? (parts[1] ?? 'internal') : parts[0]!
    return `node:${mod.replace(/\.js$/, '')}`
  }
  const src = url.indexOf('/src/')
  if (src >= 0) return `firewatch ${url.slice(src + 1).replace(/\.ts$/, '')}`
  const other = url.indexOf('/bench/')
  if (other >= 0) return `bench ${url.slice(other + 1)}`
  return url.split('/').slice(-2).join('/')
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const where = url ? `${area(url, functionName)}:${lineNumber + 1}` : ''
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })
  if (total === 0) return { totalMs: 0, areas: [], functions: [], srcInclusive: [] }

  const areas = new Map<string, number>()
  const functions = new Map<string, number>()
  for (const [id, t] of self) {
    const node = byId.get(id)!
    const a = area(node.callFrame.url, node.callFrame.functionName)
    areas.set(a, (areas.get(a) ?? 0) + t)
    const l = label(node)
    functions.set(l, (functions.get(l) ?? 0) + t)
  }

  // Inclusive time: each sample counts once for every distinct src/ function on its stack.
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map<string, number>()
  for (const [id, t] of self) {
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur)!
      if (!node.callFrame.url.includes('/src/')) continue
      const l = label(node)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + t)
    }
  }

  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => ({ k, pct: Math.round((1000 * v) / total) / 10 }))
  return {
    totalMs: Math.round(total / 1000),
    areas: rank(areas).map(({ k, pct }) => ({ area: k, pct })),
    functions: rank(functions).map(({ k, pct }) => ({ fn: k, pct })),
    srcInclusive: rank(inclusive).map(({ k, pct }) => ({ fn: k, pct }))
  }
}
