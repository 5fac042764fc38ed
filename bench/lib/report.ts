/** The stdout report: a header, one Markdown table (and its summary lines) per phase that ran, and one JSON line. */
import os from 'node:os'
import type { AlertsResult, Percentiles } from './alerts.js'
import { totalUs, type CpuSnapshot } from './cpu.js'
import type { MemoryPhaseResult } from './memory.js'
import { LAG_TARGET_MS, type PollingResult } from './polling.js'
import { TARGET_RATIO, type ThroughputResult } from './throughput.js'
import type { Versions } from './versions.js'

export interface BenchResult {
  date: string
  quick: boolean
  versions: Versions
  serverRuntime?: string
  throughput: ThroughputResult | null
  memory: MemoryPhaseResult | null
  polling: PollingResult | null
  alerts: AlertsResult | null
  seconds: number
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  return [line(rows[0]!), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.slice(1).map(line)].join('\n')
}

function throughputReport(t: ThroughputResult): string[] {
  const m = t.median
  const out: string[] = []
  out.push('')
  out.push(
    `Throughput: ${t.clients} QoS 1 publishers, window ${t.window} unacknowledged each, ${t.messagesPerRound} messages per round, ` +
      `${t.rounds.length} round(s) of raw aedes then Firewatch after ${t.warmup} warm-up messages to each; InfluxDB counted every ` +
      `${t.storedPollMs} ms after a round's last PUBACK; medians over the rounds`
  )
  out.push(
    table([
      ['measure', 'msg/s', 'ratio to raw aedes'],
      ['raw aedes: published → PUBACK', String(m.rawAckedPerSec), '1.00'],
      ['firewatch: published → PUBACK (in the Redis ingest log)', String(m.firewatchAckedPerSec), m.ackRatio.toFixed(2)],
      ['firewatch: published → stored in InfluxDB (end to end)', String(m.firewatchStoredPerSec), m.ratio.toFixed(2)]
    ])
  )
  out.push(
    `End-to-end ratio ${m.ratio.toFixed(2)} (median of per-round ratios; target ≥ ${TARGET_RATIO}: ${m.ratio >= TARGET_RATIO ? 'met' : 'NOT met'}); ` +
      `pooled over all rounds ${t.pooled.ratio.toFixed(2)}`
  )
  out.push('')
  out.push(
    table([
      ['round', 'raw acked/s', 'fw acked/s', 'fw stored/s', 'e2e ratio', 'ack ratio', 'raw ack p50/p99 ms', 'fw ack p50/p99 ms', 'fw store lag ms', 'other load cores'],
      ...t.rounds.map((p, i) => [
        String(i + 1),
        String(p.raw.ackedPerSec),
        String(p.firewatch.ackedPerSec),
        String(p.firewatch.storedPerSec),
        p.ratio.toFixed(2),
        p.ackRatio.toFixed(2),
        `${p.raw.ackLatencyMs.p50}/${p.raw.ackLatencyMs.p99}`,
        `${p.firewatch.ackLatencyMs.p50}/${p.firewatch.ackLatencyMs.p99}`,
        String(p.firewatch.storeLagAfterLastAckMs),
        `${p.raw.cores.other}/${p.firewatch.cores.other}`
      ])
    ])
  )
  const c = t.cores
  out.push(
    `Mean CPU in cores (of ${os.cpus().length}) during the rounds: raw aedes server ${c.raw.server}, publishers ${c.raw.bench}, other ${c.raw.other}; ` +
      `firewatch server ${c.firewatch.server}, redis ${c.firewatch.redis}, influxd ${c.firewatch.influxd}, postgres ${c.firewatch.postgres}, ` +
      `publishers ${c.firewatch.bench}, other ${c.firewatch.other}`
  )
  out.push('')
  const u = t.usPerMsg
  const usRow = (name: string, x: CpuSnapshot) => [name, ...[x.server, x.redis, x.influxd, x.postgres, x.bench, totalUs(x)].map((v) => v.toFixed(1))]
  out.push(
    table([
      ['CPU µs per message (median)', 'server', 'redis', 'influxd', 'postgres', 'publishers', 'total'],
      usRow('raw aedes, to PUBACK', u.raw),
      usRow('firewatch, to stored', u.firewatch)
    ])
  )
  const threads = (x: Record<string, number>) => Object.entries(x).map(([g, us]) => `${g} ${us.toFixed(1)}`).join(', ')
  out.push(`Server CPU µs per message by thread (median): raw aedes ${threads(t.threadUsPerMsg.raw)}; firewatch ${threads(t.threadUsPerMsg.firewatch)}`)
  out.push(`CPU-cost ratio raw aedes / firewatch: ${t.cpuCostRatio.toFixed(2)} (the throughput ratio to expect when both are CPU-bound on the same cores)`)
  if (t.profile) {
    out.push(`Firewatch server CPU profile (extra round), self time: ${t.profile.areas.map((a) => `${a.area} ${a.pct}%`).join(', ')}`)
    out.push(`  inclusive time of src/ functions: ${t.profile.srcInclusive.map((f) => `${f.fn} ${f.pct}%`).join(', ')}`)
  }
  if (t.rawProfile) {
    out.push(`raw aedes CPU profile (extra round), self time: ${t.rawProfile.areas.map((a) => `${a.area} ${a.pct}%`).join(', ')}`)
  }
  return out
}

function memoryReport(memory: MemoryPhaseResult, warmDevices: number): string[] {
  const out: string[] = []
  out.push('')
  const env = Object.entries(memory.mallocEnv).map(([k, v]) => `${k}=${v}`).join(' ') || "glibc's default malloc settings"
  out.push(
    `Memory: ${memory.firewatch.devices} idle devices connected (MQTT 3.1.1, keepalive 300 s), VmRSS of the server process ` +
      `after GC; servers run with ${env}`
  )
  const rows = [
    [
      'server',
      'connected',
      'RSS start MiB',
      `after first ${warmDevices} MiB`,
      'after all MiB',
      `KiB/device (after − first ${warmDevices})`,
      'KiB/device (after − start)',
      'JS heap KiB/device',
      'connects/s'
    ]
  ]
  for (const [name, m] of [
    ['raw aedes', memory.raw],
    ['firewatch', memory.firewatch]
  ] as const) {
    rows.push([
      name,
      String(m.connected),
      m.rssStartMiB.toFixed(1),
      m.rssWarmMiB.toFixed(1),
      m.rssAfterMiB.toFixed(1),
      m.perDeviceKiB.toFixed(1),
      m.perDeviceInclStartKiB.toFixed(1),
      m.heapPerDeviceKiB.toFixed(1),
      String(m.connectsPerSec)
    ])
  }
  out.push(table(rows))
  const r = memory.raw.perDeviceKiB > 0 ? (memory.firewatch.perDeviceKiB / memory.raw.perDeviceKiB).toFixed(2) : 'n/a'
  out.push(
    `Per-device RSS ratio firewatch / raw aedes: ${r}; total RSS ratio at ${memory.firewatch.devices} devices: ` +
      `${(memory.firewatch.rssAfterMiB / memory.raw.rssAfterMiB).toFixed(2)}`
  )
  return out
}

function pollingReport(polling: PollingResult): string[] {
  return [
    '',
    `Modbus polling: slaves polled every ${polling.intervalMs} ms (simulator in a child process, loopback); lag = planned tick → last answer`,
    table([
      ['slaves', 'gateways', 'polls', 'failed', 'overlapped', 'lag p50 ms', 'lag p99 ms', 'lag max ms'],
      ...polling.steps.map((s) => [s.slaves, s.gateways, s.polls, s.failures, s.overlapped, s.lagMs.p50, s.lagMs.p99, s.lagMs.max].map(String))
    ]),
    `Slaves polled at 1 s with p99 lag < ${LAG_TARGET_MS} ms: ${polling.maxSlaves} across ${polling.gatewaysAtMax} gateways (target ≥ 500 across ≥ 20)`
  ]
}

function alertsReport(a: AlertsResult): string[] {
  const b = a.background
  const row = (name: string, p: Percentiles) => [name, String(p.n), ...[p.p50, p.p95, p.p99, p.max].map((v) => (Number.isFinite(v) ? v.toFixed(1) : '∞'))]
  const list = (r: Record<string, number>) => Object.entries(r).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
  const c = a.cores
  return [
    '',
    `Fire alert latency (issue 4): ${a.fires.planned} fire events from ${a.fires.panels} alarm panels (a unit each) at random times, ` +
      `each at a new point and restored 1–3 s later, while ${b.devices} sprinkler_pressure devices offer ${b.targetPerSec} readings/s (QoS 1)`,
    table([
      ['t0 = just before the fire event’s PUBLISH; ms', 'n', 'p50', 'p95', 'p99', 'max'],
      row("live 'opened' received on {prefix}live:alerts (≥ row exists)", a.liveMs),
      row('live message made (its `at`, after the commit): row upper bound', a.serverMs),
      row('row transaction started (created_at): row lower bound', a.rowStartMs),
      row('(live message made → received: XADD, PUBLISH, delivery)', a.publishMs),
      row('PUBACK (event in the ingest log)', a.pubackMs)
    ]),
    `Live p99 ${Number.isFinite(a.liveMs.p99) ? a.liveMs.p99 : '∞'} ms (target ≤ ${a.targetP99Ms} ms): ${a.pass ? 'PASS' : 'FAIL'}` +
      `${a.atTargetLoad ? '' : ` (NOT at the target's background load: ${b.ackedPerSec} readings/s)`}; ` +
      `${a.fires.missing} of ${a.fires.planned} live messages missing`,
    `Alert rows: ${a.rows.oneRow} of ${a.fires.planned} fire events have exactly one (duplicated ${a.rows.duplicated}, missing ${a.rows.missing}); ` +
      `other alerts: ${list(a.rows.otherAlerts)}; live changes: ${list(a.liveChanges)}; unmatched 'opened': ${a.unexpectedOpened}`,
    `Background over the ${a.windowS} s window: offered ${b.offeredPerSec}/s, acknowledged ${b.ackedPerSec}/s (${b.acked}; failed ${b.failed}, ` +
      `skipped ${b.skipped}), PUBACK p50 ${b.ackMs.p50} ms, p99 ${b.ackMs.p99} ms, max ${b.ackMs.max} ms`,
    `Rule engine over the window: ${a.engine.messages} messages (${a.engine.perSec}/s) in ${a.engine.batches} batches (mean ${a.engine.meanBatch}), ` +
      `${a.engine.effects} effects, ${a.engine.failures} failed batches; ingest-log backlog (sampled every 500 ms) rule engine ` +
      `mean ${a.backlog.ruleEngine.mean} / max ${a.backlog.ruleEngine.max} entries, telemetry writer mean ${a.backlog.telemetryWriter.mean} / ` +
      `max ${a.backlog.telemetryWriter.max}` +
      (a.eventLoopDelayMs ? `; server event-loop delay p50 ${a.eventLoopDelayMs.p50} ms, p99 ${a.eventLoopDelayMs.p99} ms, max ${a.eventLoopDelayMs.max} ms` : ''),
    `Mean CPU in cores (of ${os.cpus().length}): firewatch server ${c.server}, redis ${c.redis}, influxd ${c.influxd}, postgres ${c.postgres}, ` +
      `background load generator ${c.loadgen}, panels + subscriber ${c.bench}, other ${c.other}`,
    ...(a.profile
      ? [
          `Firewatch server CPU profile of the window (--profile), self time: ${a.profile.areas.map((x) => `${x.area} ${x.pct}%`).join(', ')}`,
          `  top functions: ${a.profile.functions.map((f) => `${f.fn} ${f.pct}%`).join(', ')}`,
          `  inclusive time of src/ functions: ${a.profile.srcInclusive.map((f) => `${f.fn} ${f.pct}%`).join(', ')}`
        ]
      : [])
  ]
}

/** The whole stdout of a run; `warmDevices` names the memory phase's baseline columns. */
export function formatReport(result: BenchResult, warmDevices: number): string {
  const v = result.versions
  const out: string[] = [
    `Firewatch benchmark ${result.date.slice(0, 19)}Z, node ${v.node}, aedes ${v.aedes}, mqtt ${v.mqtt}, ` +
      `redis ${v.redis}, influxdb ${v.influxdb}, ${v.cpus} cores${result.quick ? ' (--quick)' : ''}`
  ]
  if (result.throughput) out.push(...throughputReport(result.throughput))
  if (result.memory) out.push(...memoryReport(result.memory, warmDevices))
  if (result.polling) out.push(...pollingReport(result.polling))
  if (result.alerts) out.push(...alertsReport(result.alerts))
  out.push('')
  out.push(JSON.stringify(result))
  return out.join('\n') + '\n'
}
