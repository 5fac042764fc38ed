/**
 * The memory phase: what an idle device connection costs each server in resident memory, measured in a fresh server
 * process per server, after GC.
 */
import { performance } from 'node:perf_hooks'
import { testEnv, uniqueNames } from '../../test/helpers/env.js'
import { ServerChild } from './child.js'
import type { RunCleanup } from './cleanup.js'
import { round1 } from './numbers.js'
import { MiB } from './proc.js'
import { progress } from './progress.js'
import { provisionDevices } from './provision.js'
import { connectAll, disconnectAll, type Connected, type DeviceCredentials } from './publishers.js'

export interface MemoryOptions {
  devices: number
  /** Connections made before the baseline of the per-device figure. */
  warmDevices: number
  connectTimeoutMs: number
  /** Leave glibc's dynamic mmap threshold on. */
  mallocDefault: boolean
}

interface MemoryResult {
  devices: number
  connected: number
  rssStartMiB: number
  /** After the first `warmDevices` connections (first-use allocations: TLS-free sockets, scrypt, parser pools). */
  rssWarmMiB: number
  rssAfterMiB: number
  /** (after − warm) / connections made after the warm-up. */
  perDeviceKiB: number
  /** (after − start) / all connections: includes one-time costs of the first connections. */
  perDeviceInclStartKiB: number
  heapPerDeviceKiB: number
  connectSeconds: number
  connectsPerSec: number
}

export interface MemoryPhaseResult {
  raw: MemoryResult
  firewatch: MemoryResult
  mallocEnv: Record<string, string>
}

async function memoryOf(
  server: ServerChild,
  devices: DeviceCredentials[],
  concurrency: number,
  opts: MemoryOptions
): Promise<{ result: MemoryResult; clients: Connected[] }> {
  const url = `mqtt://127.0.0.1:${server.mqttPort}`
  const deadline = performance.now() + opts.connectTimeoutMs
  const heap = async () => ((await server.request<NodeJS.MemoryUsage>('gc')).heapUsed)
  const rssStart = await server.settledRss()
  const warm = await connectAll(url, devices.slice(0, opts.warmDevices), { concurrency, deadline })
  const rssWarm = await server.settledRss()
  const heapWarm = await heap()
  const rest = await connectAll(url, devices.slice(opts.warmDevices), {
    concurrency,
    deadline,
    onProgress: (n) => progress(`${server.name}: ${opts.warmDevices + n}/${devices.length} connected`)
  })
  const clients = [...warm.clients, ...rest.clients]
  if (warm.failed || rest.failed) progress(`${server.name}: ${warm.failed + rest.failed} connections failed (${warm.firstError ?? rest.firstError})`)
  const rssAfter = await server.settledRss()
  const heapAfter = await heap()
  const stats = await server.request<{ connectedClients: number }>('stats')
  const added = Math.max(1, rest.clients.length)
  const elapsed = (warm.elapsedMs + rest.elapsedMs) / 1000
  return {
    clients,
    result: {
      devices: devices.length,
      connected: stats.connectedClients,
      rssStartMiB: round1(rssStart / MiB),
      rssWarmMiB: round1(rssWarm / MiB),
      rssAfterMiB: round1(rssAfter / MiB),
      perDeviceKiB: round1((rssAfter - rssWarm) / 1024 / added),
      perDeviceInclStartKiB: round1((rssAfter - rssStart) / 1024 / Math.max(1, clients.length)),
      heapPerDeviceKiB: round1((heapAfter - heapWarm) / 1024 / added),
      connectSeconds: round1(elapsed),
      connectsPerSec: Math.round(clients.length / elapsed)
    }
  }
}

/**
 * Each device's first login costs Firewatch one scrypt verification (16 MiB of scratch memory) on a libuv thread.
 * glibc raises its mmap threshold after the first such buffer is freed, so the next ones come from per-thread arenas
 * and stay resident for a while: up to 4 threads × 16 MiB, returned at unpredictable times later. That would swamp
 * the few KiB an idle connection costs, and even make the per-device delta negative. Pinning the threshold (the
 * same setting for both servers) returns each buffer at once; --malloc-default measures without it.
 */
const MALLOC_ENV: Record<string, string> = { MALLOC_MMAP_THRESHOLD_: String(128 * 1024) }

export async function memoryPhase(opts: MemoryOptions, cleanup: RunCleanup): Promise<MemoryPhaseResult> {
  const names = uniqueNames('benchmem')
  cleanup.dropLater(names)
  const mallocEnv = opts.mallocDefault ? {} : MALLOC_ENV
  progress(`memory: ${opts.devices} idle devices, each server in a fresh process${opts.mallocDefault ? '' : ' (MALLOC_MMAP_THRESHOLD_=131072)'}`)

  const fw = await ServerChild.start('firewatch', testEnv(names, { LOG_LEVEL: 'warn', ...mallocEnv }))
  let devices: DeviceCredentials[]
  let firewatch: MemoryResult
  let clients: Connected[] = []
  try {
    const t0 = performance.now()
    devices = await provisionDevices(testEnv(names).DATABASE_URL!, { count: opts.devices, prefix: `bm${names.suffix.slice(-6)}` })
    progress(`provisioned ${devices.length} devices in ${Math.round(performance.now() - t0)} ms (one shared scrypt hash)`)
    // Each first login costs one scrypt verification on the server: few handshakes at a time.
    const m = await memoryOf(fw, devices, 8, opts)
    clients = m.clients
    firewatch = m.result
    progress(`firewatch: ${firewatch.connected} idle devices, RSS ${firewatch.rssWarmMiB} → ${firewatch.rssAfterMiB} MiB, ${firewatch.perDeviceKiB} KiB/device`)
  } finally {
    await disconnectAll(clients)
    await fw.stop()
  }

  const raw = await ServerChild.start('raw-aedes', mallocEnv)
  let rawResult: MemoryResult
  clients = []
  try {
    const m = await memoryOf(raw, devices, 8, opts)
    clients = m.clients
    rawResult = m.result
    progress(`raw aedes: ${rawResult.connected} idle clients, RSS ${rawResult.rssWarmMiB} → ${rawResult.rssAfterMiB} MiB, ${rawResult.perDeviceKiB} KiB/device`)
  } finally {
    await disconnectAll(clients)
    await raw.stop()
  }
  return { raw: rawResult, firewatch, mallocEnv }
}
