import { readFileSync } from 'node:fs'

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

/** The last lines of a log, pino's JSON lines shown as `time level message: error`. */
export function tail(file: string, lines = 30): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return '    (no log written)'
  }
  const out = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .map((line) => {
      try {
        const o = JSON.parse(line) as { time?: number; level?: number; msg?: string; err?: { message?: string } }
        if (typeof o.msg !== 'string') return line
        const time = o.time ? new Date(o.time).toISOString().slice(11, 23) : ''
        return `${time} ${LEVELS[o.level ?? 0] ?? o.level} ${o.msg}${o.err?.message ? `: ${o.err.message}` : ''}`
      } catch {
        return line
      }
    })
  return out.length ? out.map((l) => `    ${l}`).join('\n') : '    (log is empty)'
}
