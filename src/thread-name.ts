/**
 * Name the calling thread in /proc (Linux), so `top -H`, `ps -L` and the benchmark's CPU split tell the broker's
 * thread from the telemetry writer's, the rule engine's and the 119 forward's (Node gives every thread the process's
 * name, "node"). The kernel keeps 15 bytes of it. Elsewhere, or when /proc is not writable, it does nothing.
 */
import { readlinkSync, writeFileSync } from 'node:fs'

export function nameThisThread(name: string): void {
  try {
    // "<pid>/task/<tid>": the calling thread's own entry, even in a worker thread.
    writeFileSync(`/proc/${readlinkSync('/proc/thread-self')}/comm`, name.slice(0, 15))
  } catch {
    // not Linux, or /proc read-only: the name is only a convenience
  }
}
