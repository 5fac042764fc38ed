import { children, signalGroup } from './child-processes.js'
import { bold, dim, red } from './output.js'

/**
 * SIGINT, SIGTERM and SIGHUP abort the returned signal: the demo then stops its simulated devices, then the server.
 * A second one, 2 s or more after the first, kills every child at once.
 */
export function stopOnSignals(): AbortSignal {
  const stopper = new AbortController()
  let firstSignalAt = 0
  const onSignal = (signal: NodeJS.Signals) => {
    // npm and tsx relay the terminal's Ctrl-C, so one press arrives two or three times within milliseconds.
    if (!stopper.signal.aborted) {
      firstSignalAt = Date.now()
      if (process.stdout.isTTY) process.stdout.write('\n')
      console.log(`  ${bold('stopping')}     (${signal}) simulated devices first, then the server ${dim('— press Ctrl-C again after 2 s to force')}`)
      stopper.abort()
      return
    }
    if (Date.now() - firstSignalAt < 2000) return
    console.log(`  ${red('forced stop')}: killing every child process`)
    for (const child of children) signalGroup(child, 'SIGKILL')
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  return stopper.signal
}
