/** What InfluxDB holds for one device: the seq of every stored reading, to check "every acknowledged reading, once". */
import { InfluxStore, quoteString } from '../../src/store/influx.js'
import { waitFor } from './env.js'

export interface StoredReadings {
  /** One per stored point, in time order. */
  seqs: number[]
  /** The point's time (epoch ms) for each entry of `seqs`. */
  times: number[]
  /** `count("seq")` as InfluxDB computes it. */
  count: number
}

export function storeAt(url: string, database: string): InfluxStore {
  return new InfluxStore({ url, database, token: null })
}

/** Count of stored readings of the device (0 while none, or while the database does not exist yet). */
export async function countReadings(store: InfluxStore, deviceId: string): Promise<number> {
  const series = await store.query(`SELECT count("seq") FROM "readings" WHERE "device_id" = ${quoteString(deviceId)}`)
  return Number(series[0]?.values[0]?.[1] ?? 0)
}

/** Every stored reading's seq, read in pages so no row limit can cut the answer short. */
export async function storedReadings(store: InfluxStore, deviceId: string, page = 5000): Promise<StoredReadings> {
  const seqs: number[] = []
  const times: number[] = []
  for (let offset = 0; ; offset += page) {
    const series = await store.query(
      `SELECT "seq" FROM "readings" WHERE "device_id" = ${quoteString(deviceId)} LIMIT ${page} OFFSET ${offset}`
    )
    const rows = series[0]?.values ?? []
    for (const row of rows) {
      times.push(Number(row[0]))
      seqs.push(Number(row[1]))
    }
    if (rows.length < page) break
  }
  return { seqs, times, count: await countReadings(store, deviceId) }
}

/** Seqs that appear more than once. */
export function duplicates(seqs: number[]): number[] {
  const seen = new Set<number>()
  const dup = new Set<number>()
  for (const s of seqs) (seen.has(s) ? dup : seen).add(s)
  return [...dup]
}

/** Wait until every acknowledged seq is stored; on time-out, fail naming the missing ones. */
export async function waitForAllStored(
  store: InfluxStore,
  deviceId: string,
  acked: Set<number>,
  timeoutMs = 30_000,
  everyMs = 250
): Promise<StoredReadings> {
  const missingFrom = (r: StoredReadings) => {
    const have = new Set(r.seqs)
    return [...acked].filter((s) => !have.has(s))
  }
  return waitFor(
    async () => {
      const r = await storedReadings(store, deviceId)
      return missingFrom(r).length === 0 ? r : null
    },
    timeoutMs,
    everyMs
  ).catch(async (err: Error) => {
    const missing = missingFrom(await storedReadings(store, deviceId))
    throw new Error(`${err.message}; ${missing.length} acknowledged readings missing, e.g. ${missing.slice(0, 20).join(', ')}`)
  })
}
