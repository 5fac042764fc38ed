/**
 * The draw itself, pure: from a seed, the published candidate list (with weights) and, per drawn unit, the published
 * list of eligible inspectors, it always gives the same targets and inspectors. The server runs exactly this function
 * when it draws and again when it replays a stored draw; anyone can run it from a published draw (docs/INSPECTIONS.md).
 *
 * - Generator: xoroshiro128+ from pure-rand, its 128-bit state the first 16 bytes of SHA-256(seed, UTF-8) read as four
 *   signed 32-bit big-endian integers; any seed string works (a generated one is 32 hex digits of crypto.randomBytes).
 * - Targets: weighted sampling without replacement by Efraimidis & Spirakis, "Weighted random sampling with a
 *   reservoir", Information Processing Letters 97(5), 2006 (algorithm A-ES): each candidate, in list order, gets
 *   u ~ U[0,1) (pure-rand uniformFloat64: two 32-bit outputs) and the key ln(1 − u) / w; the k largest keys are drawn,
 *   a tie going to the earlier candidate. For k = 1 a candidate is drawn with probability w / Σw.
 * - Inspectors, continuing the same stream, target by target in draw order: a uniform choice without replacement from
 *   the target's eligible list (partial Fisher–Yates: for i = 0 … m−1, j = uniformInt(i, n−1), swap i and j).
 */
import { createHash } from 'node:crypto'
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus'
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64'
import { uniformInt } from 'pure-rand/distribution/uniformInt'
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator'

/** Names the procedure above; stored with every draw, so a later change of procedure cannot rewrite old draws. */
export const ALGORITHM = 'a-es+fisher-yates/xoroshiro128plus/sha256-seed/v1'

export interface Candidate {
  unitId: string
  /** > 0 (src/inspections/weights.ts). */
  weight: number
}

export interface DrawInput {
  seed: string
  /** In their published order. */
  candidates: readonly Candidate[]
  targets: number
  inspectorsPerTarget: number
}

export interface DrawnTarget {
  unitId: string
  /** The A-ES key ln(1 − u) / w that ranked it. */
  key: number
  /** Inspectors drawn, in draw order. */
  inspectors: string[]
  /** The eligible inspectors it was drawn from, in the order used. */
  eligible: string[]
  /** Inspectors missing: the target had fewer eligible inspectors than asked for. */
  shortfall: number
}

export function generatorFromSeed(seed: string): RandomGenerator {
  const d = createHash('sha256').update(seed, 'utf8').digest()
  const state = [d.readInt32BE(0), d.readInt32BE(4), d.readInt32BE(8), d.readInt32BE(12)]
  // xoroshiro128+ never leaves the all-zero state; SHA-256 gives it with probability 2^-128.
  if (state.every((s) => s === 0)) throw new Error('seed gives the all-zero generator state; choose another seed')
  return xoroshiro128plusFromState(state)
}

/** A-ES: the `k` candidates with the largest keys, largest first. Every candidate consumes the stream, drawn or not. */
export function drawTargets(rng: RandomGenerator, candidates: readonly Candidate[], k: number): { unitId: string; key: number }[] {
  const keyed = candidates.map((c, i) => {
    if (!(c.weight > 0)) throw new Error(`candidate ${c.unitId} has weight ${c.weight}; weights must be positive`)
    return { unitId: c.unitId, i, key: Math.log(1 - uniformFloat64(rng)) / c.weight }
  })
  keyed.sort((a, b) => b.key - a.key || a.i - b.i)
  return keyed.slice(0, k).map(({ unitId, key }) => ({ unitId, key }))
}

/** Up to `m` of `eligible`, uniformly without replacement (partial Fisher–Yates). */
export function drawInspectors(rng: RandomGenerator, eligible: readonly string[], m: number): string[] {
  const pool = [...eligible]
  const take = Math.min(m, pool.length)
  for (let i = 0; i < take; i++) {
    const j = uniformInt(rng, i, pool.length - 1)
    ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
  }
  return pool.slice(0, take)
}

/**
 * The whole draw. `eligible` maps a unit to its eligible inspectors in the order used (sorted by user id when the
 * server draws); a unit missing from it has none.
 */
export function runDraw(input: DrawInput, eligible: ReadonlyMap<string, readonly string[]>): DrawnTarget[] {
  const rng = generatorFromSeed(input.seed)
  return drawTargets(rng, input.candidates, input.targets).map(({ unitId, key }) => {
    const pool = eligible.get(unitId) ?? []
    const inspectors = drawInspectors(rng, pool, input.inspectorsPerTarget)
    return { unitId, key, inspectors, eligible: [...pool], shortfall: input.inspectorsPerTarget - inspectors.length }
  })
}

/** Ids in the order every list of a draw uses: UTF-16 code units (for the ASCII ids of the API, byte order). */
export const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
