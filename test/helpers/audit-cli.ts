/** `npm run audit:verify` as a real child process (src/audit/verify-cli.ts), the way an operator runs it. */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export function runAuditVerify(databaseUrl: string, args: string[] = [], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src', 'audit', 'verify-cli.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, ...env, DATABASE_URL: databaseUrl }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0
        if (typeof code !== 'number') return reject(new Error(`audit:verify did not run: ${String(err)}\n${stderr}`))
        resolve({ code, stdout, stderr })
      }
    )
  })
}
