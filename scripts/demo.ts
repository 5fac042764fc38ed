/**
 * `npm run demo`: the whole system on this machine, with a small simulated city. Its steps live in scripts/demo/:
 *
 *   1. makes sure Redis, PostgreSQL and InfluxDB run (scripts/services.sh);
 *   2. picks ports (8080 and 1883 unless taken; ports.ts), starts from a clean demo state in databases of its own
 *      (PostgreSQL firewatch_demo, InfluxDB firewatch_demo, Redis keys fwdemo:*; clean-state.ts), never touching
 *      other data;
 *   3. starts the server (src/server.ts) as a child process, logging to a file, and waits for /readyz (server.ts);
 *   4. provisions Hangzhou through the API: 3 districts, 6 streets, 20 units, their devices, a few UITDs over
 *      GB/T 26875.3 (provision.ts, scripts/demo-gb26875.ts);
 *   5. runs every simulated device in one child process (scripts/demo-devices.ts): the MQTT devices, the UITDs
 *      (connecting to the server's GB/T 26875.3 gateway, on a free port unless --gb26875-port) and three
 *      simulated Modbus TCP gateways on free loopback ports, whose devices it then registers for polling
 *      (scripts/demo-modbus.ts, devices.ts);
 *   6. prints where to look (guide.ts), then a status line now and then (watch.ts), until Ctrl-C, SIGTERM or
 *      --duration, and what arrived (summary.ts);
 *   7. stops the simulated devices, then the server, and leaves no process behind.
 *
 * Children run in process groups of their own, so that a Ctrl-C reaches only this process and the stop happens in
 * that order; scripts/demo-watchdog.ts makes them stop by themselves should this process be killed outright
 * (child-processes.ts).
 */
import { rmSync } from 'node:fs'
import path from 'node:path'
import { Api, demoCredentials } from './demo/api.js'
import { children, ROOT, runCommand, signalGroup, stopChild } from './demo/child-processes.js'
import { cleanState } from './demo/clean-state.js'
import { startDevices, waitDevices, type DeviceRunner } from './demo/devices.js'
import { DemoError, Stopped } from './demo/errors.js'
import { printGuide } from './demo/guide.js'
import { tail } from './demo/log-tail.js'
import { adminToken, HELP, parseOptions } from './demo/options.js'
import { bold, dim, green, red, step } from './demo/output.js'
import { pickPorts } from './demo/ports.js'
import { provision } from './demo/provision.js'
import { makeRunFolder, takeLock } from './demo/run-folder.js'
import { startServer, waitReady, type DemoServer } from './demo/server.js'
import { stopOnSignals } from './demo/signals.js'
import { reportArrived } from './demo/summary.js'
import { watch } from './demo/watch.js'

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2))
  if (!opts) {
    console.log(HELP)
    return 0
  }
  const { token, fromEnv } = adminToken()
  const stop = stopOnSignals()

  console.log(`\n${bold('Firewatch demo')} ${dim(`(${ROOT})`)}`)
  const releaseLock = takeLock()
  const folder = makeRunFolder()
  let server: DemoServer | null = null
  let runner: DeviceRunner | null = null
  let code = 0

  try {
    step('services', 'scripts/services.sh: Redis, PostgreSQL and InfluxDB')
    const servicesCode = await runCommand('bash', [path.join(ROOT, 'scripts', 'services.sh')], stop)
    if (stop.aborted) throw new Stopped()
    if (servicesCode !== 0) throw new DemoError(`scripts/services.sh failed (exit ${servicesCode}); see its messages above`)

    const ports = await pickPorts(opts)
    step('ports', `HTTP ${ports.http}, MQTT ${ports.mqtt}, GB/T 26875.3 ${ports.gb26875} on ${opts.host}`)
    const cleaned = await cleanState()
    step('clean state', `dropped ${cleaned.join(', ')}`)

    const started = Date.now()
    server = startServer(opts, ports, token, folder.serverLog)
    await waitReady(server, stop, 90_000)
    step('', `${green('ready')} in ${((Date.now() - started) / 1000).toFixed(1)} s at ${server.base}`)

    const credentials = await demoCredentials(server.base, token, stop)
    const api = new Api(server.base, credentials.apiKey, stop)
    const provisioned = await provision(api)

    runner = await startDevices(opts, `mqtt://${server.connectHost}:${ports.mqtt}`, { host: server.connectHost, port: ports.gb26875 }, provisioned, folder)
    const modbus = await waitDevices(api, runner, provisioned.simulated.length + provisioned.uitds.length, stop)

    printGuide({
      base: server.base,
      token,
      tokenFromEnv: fromEnv,
      credentials,
      mqttPort: ports.mqtt,
      gb26875Port: ports.gb26875,
      host: opts.host,
      folder,
      simulated: provisioned.simulated,
      manual: provisioned.manual,
      uitds: provisioned.uitds,
      modbus
    })

    const runStarted = Date.now()
    await watch(opts.durationS, server, runner, stop, runStarted)
    await reportArrived({
      durationS: opts.durationS,
      base: server.base,
      token: credentials.apiKey,
      simulated: provisioned.simulated,
      uitds: provisioned.uitds,
      intervalMs: opts.intervalMs,
      modbus: modbus !== null,
      folder,
      started: runStarted
    })
  } catch (err) {
    if (!(err instanceof Stopped) && !stop.aborted) {
      code = 1
      console.error(`\n  ${red('demo failed:')} ${(err as Error).message}`)
      if (err instanceof DemoError && err.logTail) {
        console.error(`  ${dim(`last lines of the ${err.logTail.title} (${err.logTail.file}):`)}`)
        console.error(tail(err.logTail.file))
      } else if (!(err instanceof DemoError)) {
        console.error(err)
      }
    }
  } finally {
    // Devices first, then the server.
    if (runner) {
      const t = Date.now()
      await stopChild(runner.child, 'the simulated devices', 10_000)
      step('stopped', `simulated devices (${((Date.now() - t) / 1000).toFixed(1)} s)`)
    }
    if (server) {
      const t = Date.now()
      await stopChild(server.child, 'the server', 20_000)
      step('stopped', `server (${((Date.now() - t) / 1000).toFixed(1)} s, exit ${server.child.exitCode ?? server.child.signalCode})`)
    }
    for (const child of children) await stopChild(child, 'a child process', 5000)
    rmSync(folder.credentialsFile, { force: true })
    releaseLock()
    if (server) console.log(`  ${dim(`logs kept in ${folder.dir} and the demo's data in its databases, until the next run`)}`)
  }
  return code
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`)
    for (const child of children) signalGroup(child, 'SIGKILL')
    process.exit(1)
  }
)
