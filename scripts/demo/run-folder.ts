/** One demo at a time, and its run folder in the temp dir: logs, the devices' credentials, the Modbus control file. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DemoError } from './errors.js'

export interface RunFolder {
  dir: string
  serverLog: string
  devicesLog: string
  credentialsFile: string
  modbusControl: string
}

/** One demo at a time: a second one would drop the first one's databases under it. Returns the release. */
export function takeLock(): () => void {
  const file = path.join(os.tmpdir(), 'firewatch-demo.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 })
      return () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) rmSync(file)
        } catch {
          // gone already
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(file, 'utf8'))
      let alive = false
      try {
        process.kill(pid, 0)
        alive = true
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM'
      }
      if (alive && pid !== process.pid) throw new DemoError(`another demo is running (pid ${pid}); stop it first (or remove ${file} if it is not a demo)`)
      rmSync(file, { force: true })
    }
  }
  throw new DemoError('cannot take the demo lock')
}

/** A fresh run folder, earlier runs' removed. Call with the lock held. */
export function makeRunFolder(): RunFolder {
  // Earlier runs' folders (logs; credentials too if a run was killed): the lock says no other demo uses them.
  for (const old of readdirSync(os.tmpdir())) {
    if (/^firewatch-demo-[A-Za-z0-9]{6}$/.test(old)) rmSync(path.join(os.tmpdir(), old), { recursive: true, force: true })
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'firewatch-demo-'))
  return {
    dir,
    serverLog: path.join(dir, 'server.log'),
    devicesLog: path.join(dir, 'devices.log'),
    credentialsFile: path.join(dir, 'credentials.json'),
    modbusControl: path.join(dir, 'modbus-control')
  }
}
