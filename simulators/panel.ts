/**
 * Fire-alarm control panel simulator (profile `alarm_panel`).
 *   npx tsx simulators/panel.ts --id panel-1 --secret … --scenario fire
 */
import { deviceProgram, isMain, runDeviceCli } from './lib/cli.js'
import { runDevice, type SimulatorHandle, type SimulatorOptions } from './lib/device-runner.js'
import { PANEL_SCENARIOS, panelBehaviour, type PanelScenario } from './scenarios/panel.js'

export function runPanel(opts: SimulatorOptions<PanelScenario>): Promise<SimulatorHandle> {
  return runDevice(opts, panelBehaviour(opts.scenario, opts.seed))
}

if (isMain(import.meta.url)) {
  const program = deviceProgram('panel', 'Fire-alarm control panel: mains and battery voltages, point events', PANEL_SCENARIOS, 'quiet')
  await runDeviceCli(program, process.argv, runPanel)
}
