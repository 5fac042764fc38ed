/**
 * The throughput phase: QoS 1 rounds of raw aedes and Firewatch back to back, the share of raw aedes' acknowledged
 * rate that Firewatch keeps end to end (published → stored in InfluxDB), and where the CPU goes.
 */
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { InfluxStore } from '../../src/store/influx.js'
import { INFLUX_URL, testEnv, uniqueNames } from '../../test/helpers/env.js'
import { ServerChild } from './child.js'
import type { RunCleanup } from './cleanup.js'
import { findRedisPid, meanCores, medianCpu, medianThreads, totalUs, type CpuSnapshot } from './cpu.js'
import { median, rate, round2 } from './numbers.js'
import { summarizeProfile, type ProfileSummary } from './profile.js'
import { progress } from './progress.js'
import { provisionDevices } from './provision.js'
import { connectAll, disconnectAll, type Connected } from './publishers.js'
import { firewatchRound, rawRound, type FirewatchRoundResult, type RoundOptions, type RoundResult } from './rounds.js'

/** Firewatch end to end should keep at least this share of raw aedes' acknowledged rate. */
export const TARGET_RATIO = 0.5

export interface ThroughputOptions extends RoundOptions {
  clients: number
  /** Messages per measured round and in the warm-up (over all clients). */
  messages: number
  warmup: number
  rounds: number
  connectTimeoutMs: number
  /** Add a CPU-profiled round of each server (done anyway when the ratio misses the target). */
  profile: boolean
}

interface RoundPair {
  raw: RoundResult
  firewatch: FirewatchRoundResult
  /** Firewatch published → stored over raw aedes acked, this round. */
  ratio: number
  /** Firewatch acked over raw aedes acked, this round. */
  ackRatio: number
}

export interface ThroughputResult {
  clients: number
  window: number
  messagesPerRound: number
  /** Warm-up messages to each server before the rounds. */
  warmup: number
  /** InfluxDB counted every this many ms once a round's last PUBACK is in. */
  storedPollMs: number
  rounds: RoundPair[]
  /** Medians over the rounds (each round: raw aedes, then Firewatch, back to back). */
  median: { rawAckedPerSec: number; firewatchAckedPerSec: number; firewatchStoredPerSec: number; ratio: number; ackRatio: number }
  /** All rounds pooled (total messages over total time). */
  pooled: { rawAckedPerSec: number; firewatchAckedPerSec: number; firewatchStoredPerSec: number; ratio: number }
  /** Mean CPU use during the rounds, in cores. */
  cores: { raw: CpuSnapshot; firewatch: CpuSnapshot }
  /** Median CPU time per message of each process, µs. */
  usPerMsg: { raw: CpuSnapshot; firewatch: CpuSnapshot }
  /** Median CPU time per message of each server's threads, µs (main = the event loop: the broker). */
  threadUsPerMsg: { raw: Record<string, number>; firewatch: Record<string, number> }
  /**
   * Median over the rounds of (CPU µs per message of our processes, raw aedes) / (the same, Firewatch end to end): the
   * throughput ratio to expect when both runs are CPU-bound on the same cores. Less sensitive to other load.
   */
  cpuCostRatio: number
  profile: ProfileSummary | null
  rawProfile: ProfileSummary | null
}

export async function throughputPhase(opts: ThroughputOptions, cleanup: RunCleanup): Promise<ThroughputResult> {
  const perClient = Math.ceil(opts.messages / opts.clients)
  const warmPerClient = Math.ceil(opts.warmup / opts.clients)
  const names = uniqueNames('bench')
  cleanup.dropLater(names)
  progress(`throughput: ${opts.clients} clients × window ${opts.window}, ${perClient * opts.clients} messages per round, ${opts.rounds} round(s)`)
  const raw = await ServerChild.start('raw-aedes')
  const fw = await ServerChild.start('firewatch', testEnv(names, { LOG_LEVEL: 'warn' }))
  const store = new InfluxStore({ url: INFLUX_URL, database: names.influxDb, token: null })
  await findRedisPid()
  let rawClients: Connected[] = []
  let fwClients: Connected[] = []
  try {
    const devices = await provisionDevices(testEnv(names).DATABASE_URL!, { count: opts.clients, prefix: `bt${names.suffix.slice(-6)}` })
    const deadline = performance.now() + opts.connectTimeoutMs
    const rc = await connectAll(`mqtt://127.0.0.1:${raw.mqttPort}`, devices, { concurrency: 10, deadline })
    rawClients = rc.clients
    const fc = await connectAll(`mqtt://127.0.0.1:${fw.mqttPort}`, devices, { concurrency: 4, deadline })
    fwClients = fc.clients
    if (rc.failed || fc.failed) throw new Error(`publishers could not connect: ${rc.firstError ?? fc.firstError}`)

    let seq = 0
    progress(`warm-up: ${warmPerClient * opts.clients} messages to each server`)
    await rawRound(raw, rawClients, warmPerClient, seq, opts)
    const warm = await firewatchRound(fw, fwClients, store, warmPerClient, seq, opts)
    if (warm.timedOut) throw new Error('warm-up messages did not all reach InfluxDB; is the telemetry writer running?')
    seq += warmPerClient

    const rounds: RoundPair[] = []
    for (let r = 1; r <= opts.rounds; r++) {
      const rr = await rawRound(raw, rawClients, perClient, seq, opts)
      const fr = await firewatchRound(fw, fwClients, store, perClient, seq, opts)
      seq += perClient
      const pair = {
        raw: rr,
        firewatch: fr,
        ratio: rr.ackedPerSec ? round2(fr.storedPerSec / rr.ackedPerSec) : 0,
        ackRatio: rr.ackedPerSec ? round2(fr.ackedPerSec / rr.ackedPerSec) : 0
      }
      rounds.push(pair)
      progress(
        `round ${r}/${opts.rounds}: raw aedes ${rr.ackedPerSec} acked/s; firewatch ${fr.ackedPerSec} acked/s, ${fr.storedPerSec} stored/s; ` +
          `ratio ${pair.ratio} (other load ${rr.cores.other} / ${fr.cores.other} cores)`
      )
      if (rr.timedOut || fr.timedOut) throw new Error(`round ${r} did not finish within its bounds`)
    }

    const result = summarize(rounds, opts.clients, opts.window, perClient * opts.clients)
    result.warmup = warmPerClient * opts.clients
    result.storedPollMs = opts.storedPollMs
    if (opts.profile || result.median.ratio < TARGET_RATIO) {
      progress(
        `${result.median.ratio < TARGET_RATIO ? `ratio ${result.median.ratio} < ${TARGET_RATIO}: ` : ''}` +
          'one more round of each, CPU-profiled (not counted above)'
      )
      result.rawProfile = await profiled(raw, cleanup.tmp, () => rawRound(raw, rawClients, perClient, seq, opts))
      result.profile = await profiled(fw, cleanup.tmp, () => firewatchRound(fw, fwClients, store, perClient, seq, opts))
    }
    progress(`firewatch counters: ${JSON.stringify(await fw.request('stats'))}`)
    return result
  } finally {
    await disconnectAll([...rawClients, ...fwClients])
    await Promise.all([raw.stop(), fw.stop()])
  }
}

/** Medians, pooled rates and CPU figures over the measured rounds. */
function summarize(rounds: RoundPair[], clients: number, window: number, messagesPerRound: number): ThroughputResult {
  const pool = (pick: (p: RoundPair) => { n: number; perSec: number }) => {
    let n = 0
    let ms = 0
    for (const p of rounds) {
      const x = pick(p)
      n += x.n
      ms += x.perSec ? (x.n / x.perSec) * 1000 : 0
    }
    return rate(n, ms)
  }
  const pooledRaw = pool((p) => ({ n: p.raw.acked, perSec: p.raw.ackedPerSec }))
  const pooledStored = pool((p) => ({ n: p.firewatch.stored, perSec: p.firewatch.storedPerSec }))
  return {
    clients,
    window,
    messagesPerRound,
    warmup: 0,
    storedPollMs: 0,
    rounds,
    median: {
      rawAckedPerSec: Math.round(median(rounds.map((p) => p.raw.ackedPerSec))),
      firewatchAckedPerSec: Math.round(median(rounds.map((p) => p.firewatch.ackedPerSec))),
      firewatchStoredPerSec: Math.round(median(rounds.map((p) => p.firewatch.storedPerSec))),
      ratio: round2(median(rounds.map((p) => p.ratio))),
      ackRatio: round2(median(rounds.map((p) => p.ackRatio)))
    },
    pooled: {
      rawAckedPerSec: pooledRaw,
      firewatchAckedPerSec: pool((p) => ({ n: p.firewatch.acked, perSec: p.firewatch.ackedPerSec })),
      firewatchStoredPerSec: pooledStored,
      ratio: pooledRaw ? round2(pooledStored / pooledRaw) : 0
    },
    cores: { raw: meanCores(rounds.map((p) => p.raw.cores)), firewatch: meanCores(rounds.map((p) => p.firewatch.cores)) },
    usPerMsg: { raw: medianCpu(rounds.map((p) => p.raw.usPerMsg)), firewatch: medianCpu(rounds.map((p) => p.firewatch.usPerMsg)) },
    threadUsPerMsg: {
      raw: medianThreads(rounds.map((p) => p.raw.threadUsPerMsg)),
      firewatch: medianThreads(rounds.map((p) => p.firewatch.threadUsPerMsg))
    },
    cpuCostRatio: round2(median(rounds.map((p) => totalUs(p.raw.usPerMsg) / Math.max(1e-9, totalUs(p.firewatch.usPerMsg))))),
    profile: null,
    rawProfile: null
  }
}

async function profiled(server: ServerChild, dir: string, run: () => Promise<unknown>): Promise<ProfileSummary> {
  const file = path.join(dir, `${server.name}-${Date.now()}.cpuprofile`)
  await server.request('profile-start')
  await run()
  await server.request('profile-stop', file)
  const summary = summarizeProfile(file)
  progress(`${server.name} CPU profile (self time by area): ${summary.areas.map((a) => `${a.area} ${a.pct}%`).join(', ')}`)
  return summary
}
