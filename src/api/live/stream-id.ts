/** Redis stream entry ids (`ms-seq`) as numbers to compare: the live channel's event ids. */
/** A stream entry id, `ms-seq`, as numbers to compare. */
export type Id = readonly [bigint, bigint]
const MAX_U64 = (1n << 64n) - 1n

export function parseId(s: string): Id | null {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(s)
  if (!m) return null
  const id = [BigInt(m[1]!), BigInt(m[2]!)] as const
  return id[0] <= MAX_U64 && id[1] <= MAX_U64 ? id : null
}
export const cmp = (a: Id, b: Id) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1)
export const idText = (id: Id) => `${id[0]}-${id[1]}`
