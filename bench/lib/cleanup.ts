/**
 * What a run leaves behind and its removal: the server children, the compiled servers, the test databases and Redis
 * keys, and the CPU profile directory (kept, for a closer look in Chrome DevTools, when asked for with --profile).
 * Also the last resorts: a signal or the whole-run watchdog cleans up and exits.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dropNames, type TestNames } from '../../test/helpers/env.js'
import { killChildren, removeBuild } from './child.js'
import { progress } from './progress.js'

export interface RunCleanup {
  /** Where CPU profiles are written. */
  tmp: string
  /** Drop these databases and keys at the end of the run. */
  dropLater(names: TestNames): void
  run(): Promise<void>
}

export function createCleanup(keepProfiles: boolean): RunCleanup {
  const namesToDrop: TestNames[] = []
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'firewatch-bench-'))
  return {
    tmp,
    dropLater: (names) => void namesToDrop.push(names),
    async run() {
      killChildren()
      removeBuild()
      for (const names of namesToDrop.splice(0)) {
        await dropNames(names).catch((err) => progress(`cleanup of ${names.suffix} failed: ${(err as Error).message}`))
      }
      if (keepProfiles) progress(`CPU profiles kept in ${tmp}`)
      else rmSync(tmp, { recursive: true, force: true })
    }
  }
}

/** On SIGINT/SIGTERM (a second one exits at once) or after `minutes`, clean up and exit. */
export function cleanUpOnStop(cleanup: RunCleanup, minutes: number): void {
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(130)
      interrupted = true
      progress(`${signal}: stopping and cleaning up`)
      void cleanup.run().finally(() => process.exit(130))
    })
  }
  // Every phase bounds itself; this is the last resort.
  const watchdog = setTimeout(() => {
    progress(`the benchmark ran longer than ${minutes} minutes; giving up`)
    void cleanup.run().finally(() => process.exit(1))
  }, minutes * 60_000)
  watchdog.unref()
}
