/**
 * Seeded randomness without state: every draw is a hash of (seed, step, channel…), so a generator is a pure function
 * of time and seed, any step can be computed on its own, and the same seed replays the same run.
 */

/** Fold a string key into 32 bits (FNV-1a), so channels can be named rather than numbered. */
function keyBits(key: number | string): number {
  if (typeof key === 'number') return (key >>> 0) ^ Math.floor(key / 2 ** 32)
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** A 32-bit hash of the keys: murmur3's finalizer applied after mixing in each key. */
export function hash(...keys: (number | string)[]): number {
  let h = 0x9e3779b9
  for (const key of keys) {
    h = Math.imul(h ^ keyBits(key), 0xcc9e2d51)
    h = (h << 15) | (h >>> 17)
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return h >>> 0
}

/** Uniform in [0, 1). */
export const unit = (...keys: (number | string)[]): number => hash(...keys) / 2 ** 32

/** Uniform in [-1, 1). */
export const signed = (...keys: (number | string)[]): number => unit(...keys) * 2 - 1

/** One of the items, uniformly. */
export const pick = <T>(items: readonly T[], ...keys: (number | string)[]): T => items[hash(...keys) % items.length]!
