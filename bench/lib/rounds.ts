/**
 * One measured publishing round against each server: raw aedes counts PUBACKs; Firewatch counts PUBACKs and then
 * waits until every reading of the round is queryable in InfluxDB.
 */
import { performance } from 'node:perf_hooks'
import type { InfluxStore } from '../../src/store/influx.js'
import type { ServerChild } from './child.js'
import { cpuSnapshot, cpuUse, type CpuSnapshot } from './cpu.js'
import { rate } from './numbers.js'
import { progress } from './progress.js'
import { publishWindowed, type Connected, type PublishResult } from './publishers.js'

export interface RoundOptions {
  /** Unacknowledged QoS 1 messages per client. */
  window: number
  /** Bound on one publishing round, and on waiting for InfluxDB after it. */
  roundTimeoutMs: number
  storeTimeoutMs: number
  /** How often InfluxDB is counted once the last PUBACK is in: the resolution of the end-to-end time. */
  storedPollMs: number
}

export interface RoundResult {
  messages: number
  acked: number
  failed: number
  ackedPerSec: number
  ackLatencyMs: { p50: number; p99: number; max: number }
  cores: CpuSnapshot
  usPerMsg: CpuSnapshot
  /** The server's CPU µs per message by thread group (main, fw-writer, fw-engine, other). */
  threadUsPerMsg: Record<string, number>
  timedOut: boolean
}

export interface FirewatchRoundResult extends RoundResult {
  stored: number
  storedPerSec: number
  /** From the last PUBACK until the last reading was in InfluxDB. */
  storeLagAfterLastAckMs: number
  /** Most messages acknowledged but not yet queryable in InfluxDB, as sampled. */
  maxBacklog: number
}

/** Readings stored since `sinceMs` (device time): bounded in time, so a poll costs InfluxDB little. */
async function storedCount(store: InfluxStore, sinceMs: number): Promise<number> {
  const series = await store.query(`SELECT count("pressure_mpa") FROM "readings" WHERE time >= ${Math.floor(sinceMs)}ms`)
  return Number(series[0]?.values[0]?.[1] ?? 0)
}

function checkPublish(label: string, res: PublishResult): void {
  if (res.failed > 0 || res.acked < res.sent) {
    progress(`${label}: ${res.failed} publishes failed, ${res.sent - res.acked} not acknowledged (${res.firstError ?? 'timeout'})`)
  }
}

function roundLatency(l: { p50: number; p99: number; max: number }) {
  return { p50: Math.round(l.p50 * 10) / 10, p99: Math.round(l.p99 * 10) / 10, max: Math.round(l.max) }
}

export async function rawRound(server: ServerChild, clients: Connected[], per: number, seqBase: number, opts: RoundOptions): Promise<RoundResult> {
  const before = cpuSnapshot(server)
  const res = await publishWindowed(clients, {
    perClient: per,
    window: opts.window,
    seqBase,
    deadline: performance.now() + opts.roundTimeoutMs
  })
  const ms = res.lastAckAt - res.startedAt
  const cpu = cpuUse(before, cpuSnapshot(server), ms / 1000, res.acked)
  checkPublish('raw aedes', res)
  return {
    messages: res.sent,
    acked: res.acked,
    failed: res.failed,
    ackedPerSec: rate(res.acked, ms),
    ackLatencyMs: roundLatency(res.latencyMs),
    ...cpu,
    timedOut: res.timedOut
  }
}

export async function firewatchRound(
  server: ServerChild,
  clients: Connected[],
  store: InfluxStore,
  per: number,
  seqBase: number,
  opts: RoundOptions
): Promise<FirewatchRoundResult> {
  // Every reading of this round carries a device time at or after this, and those of earlier rounds before it.
  const since = Date.now()
  await new Promise((r) => setTimeout(r, 2))
  const expected = per * clients.length
  const before = cpuSnapshot(server)
  const live = { acked: 0 }
  let publishing = true
  let maxBacklog = 0
  let stored = 0
  let storedAt = 0
  const startedAt = performance.now()
  const publish = publishWindowed(clients, { perClient: per, window: opts.window, seqBase, deadline: startedAt + opts.roundTimeoutMs, live })
  // Poll InfluxDB until every message of the round is queryable (or the bound runs out): every 100 ms while the
  // round publishes (only to sample the backlog; the last reading cannot be in before the last PUBACK), then every
  // `storedPollMs` (5 by default), so the end-to-end time is late by at most that plus one count query.
  const published = publish.then(() => undefined)
  const poll = (async () => {
    let giveUpAt = Infinity
    for (;;) {
      // A failed query (InfluxDB busy or restarting) is just a poll without news; the bounds still apply.
      const n = await storedCount(store, since).catch(() => stored)
      const now = performance.now()
      stored = n
      if (n >= expected) {
        storedAt = now
        return
      }
      if (publishing) maxBacklog = Math.max(maxBacklog, live.acked - n)
      if (!publishing && giveUpAt === Infinity) giveUpAt = now + opts.storeTimeoutMs
      if (now > giveUpAt) return
      if (publishing) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([published, new Promise((r) => (timer = setTimeout(r, 100)))])
        clearTimeout(timer)
      } else await new Promise((r) => setTimeout(r, opts.storedPollMs))
    }
  })()
  const res = await publish
  publishing = false
  await poll
  const end = storedAt || performance.now()
  const cpu = cpuUse(before, cpuSnapshot(server), (end - startedAt) / 1000, stored)
  checkPublish('firewatch', res)
  if (!storedAt) progress(`firewatch: only ${stored} of ${expected} readings reached InfluxDB within ${opts.storeTimeoutMs} ms`)
  const ackMs = res.lastAckAt - res.startedAt
  return {
    messages: res.sent,
    acked: res.acked,
    failed: res.failed,
    ackedPerSec: rate(res.acked, ackMs),
    ackLatencyMs: roundLatency(res.latencyMs),
    ...cpu,
    timedOut: res.timedOut || !storedAt,
    stored,
    storedPerSec: storedAt ? rate(expected, storedAt - res.startedAt) : 0,
    storeLagAfterLastAckMs: storedAt ? Math.round(storedAt - res.lastAckAt) : -1,
    maxBacklog
  }
}
