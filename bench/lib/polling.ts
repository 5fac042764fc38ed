/**
 * The polling phase: how many Modbus slaves the pollers keep on a 1 s schedule with a 99th-percentile lag under
 * 100 ms. The slaves are simulators/modbus-slaves.ts in a child process (its own event loop) on loopback; the
 * pollers run in this process as in the server, each reading normalized and appended to a real Redis ingest log.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { projectRoot } from '../../src/config/index.js'
import { loadProfiles } from '../../src/ingest/profiles.js'
import { IngestLog } from '../../src/ingest/ingest-log.js'
import { Rejections } from '../../src/ingest/rejections.js'
import { ModbusPollers, type ModbusTarget } from '../../src/ingest/modbus/index.js'
import { dropRedisPrefix, REDIS_URL, uniqueNames } from '../../test/helpers/env.js'
import { progress } from './progress.js'

export const LAG_TARGET_MS = 100
const INTERVAL_MS = 1000
const SLAVES_PER_GATEWAY = 50

export interface PollingStep {
  slaves: number
  gateways: number
  polls: number
  failures: number
  overlapped: number
  lagMs: { p50: number; p99: number; max: number }
}

export interface PollingResult {
  intervalMs: number
  steps: PollingStep[]
  /** The most slaves of a step whose p99 lag stayed under the target. */
  maxSlaves: number
  gatewaysAtMax: number
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : NaN)

async function startSimulator(gateways: number): Promise<{ child: ChildProcess; ports: number[] }> {
  const file = path.join(projectRoot, 'simulators', 'modbus-slaves.ts')
  const args = ['--import', 'tsx', file, '--port', '0', '--gateways', String(gateways), '--pressure', String(SLAVES_PER_GATEWAY), '--tanks', '0']
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Modbus simulator did not start in 30 s')), 30_000)
    child.once('exit', (code) => reject(new Error(`Modbus simulator exited with ${code}`)))
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer)
      resolve(l)
    })
  })
  return { child, ports: (JSON.parse(line) as { ports: number[] }).ports }
}

/** Steps of `slaves` total, spread over at least 20 gateways; each measured for `measureMs` after a warm-up. */
export async function pollingPhase(opts: { steps: number[]; warmupMs: number; measureMs: number }): Promise<PollingResult> {
  const maxGateways = Math.max(20, ...opts.steps.map((n) => Math.ceil(n / 25)))
  progress(`polling: starting ${maxGateways} simulated gateways × ${SLAVES_PER_GATEWAY} slaves`)
  const sim = await startSimulator(maxGateways)
  const names = uniqueNames('poll')
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true })
  const log = pino({ level: 'warn' })
  const profiles = loadProfiles(path.join(projectRoot, 'devices'))
  const steps: PollingStep[] = []
  try {
    for (const n of opts.steps) {
      const gateways = Math.max(20, Math.ceil(n / 25))
      const targets: ModbusTarget[] = Array.from({ length: n }, (_, i) => ({
        deviceId: `bench-${i}`,
        unitId: 'bench',
        profile: 'sprinkler_pressure',
        modbus: { host: '127.0.0.1', port: sim.ports[i % gateways]!, unitId: Math.floor(i / gateways) + 1, pollIntervalMs: INTERVAL_MS }
      }))
      const pollers = new ModbusPollers({
        targets: async () => targets,
        profiles,
        ingestLog: new IngestLog(redis, { prefix: names.redisPrefix }),
        rejections: new Rejections(log),
        log,
        redis,
        redisPrefix: names.redisPrefix,
        timeoutMs: 1000,
        reloadMs: 3_600_000
      })
      await pollers.start()
      await new Promise((r) => setTimeout(r, opts.warmupMs))
      pollers.takeLags()
      const before = pollers.stats()
      await new Promise((r) => setTimeout(r, opts.measureMs))
      const lags = pollers.takeLags().sort((a, b) => a - b)
      const after = pollers.stats()
      await pollers.stop()
      await dropRedisPrefix(names.redisPrefix)
      const step: PollingStep = {
        slaves: n,
        gateways,
        polls: after.polls - before.polls,
        failures: after.failures - before.failures,
        overlapped: after.overlapped - before.overlapped,
        lagMs: { p50: pct(lags, 50), p99: pct(lags, 99), max: lags.at(-1) ?? NaN }
      }
      steps.push(step)
      progress(
        `polling: ${n} slaves on ${gateways} gateways at ${INTERVAL_MS} ms: ${step.polls} polls, ${step.failures} failed, ` +
          `lag p50 ${step.lagMs.p50} ms, p99 ${step.lagMs.p99} ms, max ${step.lagMs.max} ms`
      )
      // A step that misses the target ends the climb.
      if (!(step.lagMs.p99 < LAG_TARGET_MS) || step.failures > 0) break
    }
  } finally {
    sim.child.kill('SIGTERM')
    redis.disconnect()
    await dropRedisPrefix(names.redisPrefix)
  }
  const good = steps.filter((s) => s.lagMs.p99 < LAG_TARGET_MS && s.failures === 0 && s.polls > 0)
  const best = good.at(-1)
  return { intervalMs: INTERVAL_MS, steps, maxSlaves: best?.slaves ?? 0, gatewaysAtMax: best?.gateways ?? 0 }
}
