/**
 * Sprinkler pipe-network pressure transmitter simulator (profile `sprinkler_pressure`).
 *   npx tsx simulators/sprinkler-pressure.ts --id press-1 --secret … --scenario slow-leak
 */
import { deviceProgram, isMain, runDeviceCli } from './lib/cli.js'
import { runDevice, type SimulatorHandle, type SimulatorOptions } from './lib/device-runner.js'
import { SPRINKLER_SCENARIOS, sprinklerBehaviour, type SprinklerScenario } from './scenarios/sprinkler-pressure.js'

export function runSprinklerPressure(opts: SimulatorOptions<SprinklerScenario>): Promise<SimulatorHandle> {
  return runDevice(opts, sprinklerBehaviour(opts.scenario, opts.seed))
}

if (isMain(import.meta.url)) {
  const program = deviceProgram('sprinkler-pressure', 'Sprinkler pressure transmitter: pressure, battery, temperature', SPRINKLER_SCENARIOS, 'normal')
  await runDeviceCli(program, process.argv, runSprinklerPressure)
}
