/** The demo while it runs: a status line every 10 s, until stopped or --duration is up, or a child exits. */
import { setTimeout as sleep } from 'node:timers/promises'
import { assertDevicesRunning, type DeviceRunner } from './devices.js'
import { dim, red, step, yellow } from './output.js'
import { assertServerRunning, readStatus, type DemoServer } from './server.js'

export async function watch(durationS: number | null, server: DemoServer, runner: DeviceRunner, stop: AbortSignal, started: number): Promise<void> {
  const end = durationS === null ? Infinity : started + durationS * 1000
  if (durationS !== null) step('running', `for ${durationS} s (--duration)`)
  let nextStatus = Date.now() + 10_000
  while (!stop.aborted && Date.now() < end) {
    assertServerRunning(server)
    assertDevicesRunning(runner)
    if (Date.now() >= nextStatus) {
      nextStatus += 10_000
      const ready = await readStatus(server.base)
      const s = ready?.status ?? {}
      const clock = new Date().toTimeString().slice(0, 8)
      const rejected = Object.values((s.rejected as Record<string, number> | undefined) ?? {}).reduce((a, b) => a + b, 0)
      const open = (s.openAlerts as Record<string, number> | undefined) ?? {}
      const alerts = Object.values(open).reduce((a, b) => a + b, 0)
      const byClass = Object.entries(open).map(([c, n]) => `${n} ${c}`).join(', ')
      console.log(
        `  ${dim(clock)}  ${s.connectedDevices ?? '?'} devices connected · ${s.accepted ?? '?'} messages accepted · ${s.written ?? '?'} written to InfluxDB · ${alerts ? red(`${alerts} open alerts (${byClass})`) : '0 open alerts'}${rejected ? ` · ${yellow(`${rejected} rejected`)}` : ''}`
      )
    }
    await sleep(Math.max(0, Math.min(250, end - Date.now())))
  }
}
