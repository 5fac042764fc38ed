/** Reads of /proc (Linux): resident memory and CPU time of a process, and the pids of the services. */
import { readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

let clockTicks: number | null = null
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** VmRSS of a process in bytes (from /proc/<pid>/status), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

/**
 * User + system CPU seconds a process (or, with `tid`, one of its threads) has used so far (from /proc/<pid>/stat),
 * or null when it is gone.
 */
export function cpuSeconds(pid: number, tid?: string): number | null {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 (utime, stime) are at 11 and 12 once pid and comm are cut off.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
  } catch {
    return null
  }
}

/**
 * CPU seconds of each thread of a process, grouped: `main` (the thread whose id is the pid: the event loop), threads
 * the process named itself (Firewatch's `fw-writer`, `fw-engine`: src/thread-name.ts), and `other` (V8's compiler
 * and GC helpers, libuv's pool). Empty when the process is gone.
 */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    const cpu = cpuSeconds(pid, tid)
    if (cpu === null) continue
    let comm = ''
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
    } catch {
      continue
    }
    const group = tid === String(pid) ? 'main' : comm.startsWith('fw-') ? comm : 'other'
    out[group] = (out[group] ?? 0) + cpu
  }
  return out
}

/** Pids whose command name (/proc/<pid>/comm) is `comm`. Read-only: used to attribute CPU time, never to signal. */
export function pidsByComm(comm: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

export const MiB = 1024 * 1024

/** Busy CPU seconds of the whole machine so far (all cores; /proc/stat: everything but idle and iowait). */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number) as number[]
    return (user! + nice! + system! + irq! + softirq! + steal!) / ticksPerSecond()
  } catch {
    return 0
  }
}
