/** Rounding, medians and rates for the benchmark's figures. */

export const round1 = (x: number) => Math.round(x * 10) / 10

export const round2 = (x: number) => Math.round(x * 100) / 100

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Messages per second: `n` messages in `ms` milliseconds. */
export const rate = (n: number, ms: number) => (ms > 0 ? Math.round((n * 1000) / ms) : 0)
