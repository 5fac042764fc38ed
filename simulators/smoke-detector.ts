/**
 * Independent / NB-IoT smoke detector simulator (profile `smoke_detector`).
 *   npx tsx simulators/smoke-detector.ts --id smoke-1 --secret … --scenario smoke
 */
import { deviceProgram, isMain, runDeviceCli } from './lib/cli.js'
import { runDevice, type SimulatorHandle, type SimulatorOptions } from './lib/device-runner.js'
import { SMOKE_SCENARIOS, smokeBehaviour, type SmokeScenario } from './scenarios/smoke-detector.js'

export function runSmokeDetector(opts: SimulatorOptions<SmokeScenario>): Promise<SimulatorHandle> {
  return runDevice(opts, smokeBehaviour(opts.scenario, opts.seed))
}

if (isMain(import.meta.url)) {
  const program = deviceProgram('smoke-detector', 'Photoelectric smoke detector: smoke, battery, temperature, signal', SMOKE_SCENARIOS, 'normal')
  await runDeviceCli(program, process.argv, runSmokeDetector)
}
