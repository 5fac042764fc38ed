/**
 * CPU accounting during a measured round: the server child, the publishers (this process), Redis, InfluxDB,
 * PostgreSQL, and everything else the machine ran meanwhile.
 */
import { Redis } from 'ioredis'
import { REDIS_URL } from '../../test/helpers/env.js'
import type { ServerChild } from './child.js'
import { median, round1, round2 } from './numbers.js'
import { cpuSeconds, machineBusySeconds, pidsByComm } from './proc.js'

export interface CpuSnapshot {
  server: number
  bench: number
  redis: number
  influxd: number
  postgres: number
  /** Everything else the machine ran meanwhile (other users' work: noise). */
  other: number
}

const CPU_KEYS = ['server', 'bench', 'redis', 'influxd', 'postgres', 'other'] as const

/** CPU seconds per pid of each service; pids are looked up again each time (PostgreSQL forks a backend per connection). */
type ServiceCpu = Record<'redis' | 'influxd' | 'postgres', Map<number, number>>

let redisPid: number | null = null
export async function findRedisPid(): Promise<void> {
  const redis = new Redis(REDIS_URL)
  try {
    redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || null
  } finally {
    redis.disconnect()
  }
}

function serviceCpu(): ServiceCpu {
  const of = (pids: number[]) => new Map(pids.map((pid) => [pid, cpuSeconds(pid) ?? 0]))
  return { redis: of(redisPid ? [redisPid] : []), influxd: of(pidsByComm('influxd')), postgres: of(pidsByComm('postgres')) }
}

export interface Snapshot {
  server: number
  /** The server's CPU seconds by thread group (main, fw-writer, fw-engine, other). */
  threads: Record<string, number>
  bench: number
  machine: number
  services: ServiceCpu
}

export function cpuSnapshot(server: ServerChild): Snapshot {
  const self = process.cpuUsage()
  return { server: server.cpu(), threads: server.threads(), bench: (self.user + self.system) / 1e6, machine: machineBusySeconds(), services: serviceCpu() }
}

/** CPU seconds used between two snapshots. */
function cpuDelta(a: Snapshot, b: Snapshot): CpuSnapshot {
  // A process that started during the window counts from 0; one that ended is left out.
  const group = (k: keyof ServiceCpu) => [...b.services[k]].reduce((sum, [pid, t]) => sum + t - (a.services[k].get(pid) ?? 0), 0)
  const d = {
    server: b.server - a.server,
    bench: b.bench - a.bench,
    redis: group('redis'),
    influxd: group('influxd'),
    postgres: group('postgres'),
    other: 0
  }
  d.other = Math.max(0, b.machine - a.machine - (d.server + d.bench + d.redis + d.influxd + d.postgres))
  return d
}

const mapCpu = (c: CpuSnapshot, f: (x: number) => number): CpuSnapshot =>
  Object.fromEntries(CPU_KEYS.map((k) => [k, f(c[k])])) as unknown as CpuSnapshot

/** CPU use during a round: in cores (1.0 = one core busy) and in µs per message, and the server's by thread. */
export function cpuUse(
  a: Snapshot,
  b: Snapshot,
  seconds: number,
  messages: number
): { cores: CpuSnapshot; usPerMsg: CpuSnapshot; threadUsPerMsg: Record<string, number> } {
  const d = cpuDelta(a, b)
  const threadUsPerMsg: Record<string, number> = {}
  for (const [group, t] of Object.entries(b.threads)) threadUsPerMsg[group] = round1(((t - (a.threads[group] ?? 0)) * 1e6) / Math.max(1, messages))
  return {
    cores: mapCpu(d, (x) => round2(x / seconds)),
    usPerMsg: mapCpu(d, (x) => round1((x * 1e6) / Math.max(1, messages))),
    threadUsPerMsg
  }
}

/** Median over rounds of each thread group's µs per message. */
export function medianThreads(xs: Record<string, number>[]): Record<string, number> {
  const groups = [...new Set(xs.flatMap((x) => Object.keys(x)))].sort()
  return Object.fromEntries(groups.map((g) => [g, round1(median(xs.map((x) => x[g] ?? 0)))]))
}

/** Our processes' CPU per message (server, publishers, Redis, InfluxDB, PostgreSQL): what a saturated machine divides. */
export const totalUs = (u: CpuSnapshot) => u.server + u.bench + u.redis + u.influxd + u.postgres

export function medianCpu(xs: CpuSnapshot[]): CpuSnapshot {
  return Object.fromEntries(CPU_KEYS.map((k) => [k, round1(median(xs.map((x) => x[k])))])) as unknown as CpuSnapshot
}

export function meanCores(xs: CpuSnapshot[]): CpuSnapshot {
  return Object.fromEntries(CPU_KEYS.map((k) => [k, round2(xs.reduce((a, x) => a + x[k], 0) / xs.length)])) as unknown as CpuSnapshot
}
