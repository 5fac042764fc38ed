/** What the benchmark ran on: Node, the MQTT packages, the services' versions and the CPU. */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { projectRoot } from '../../src/config/index.js'

export type Versions = ReturnType<typeof versions>

export function versions() {
  // Some packages do not export ./package.json: read it from the installation.
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(path.join(projectRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return '?'
    }
  }
  const cmd = (file: string, args: string[], re: RegExp) => {
    try {
      return re.exec(execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1] ?? '?'
    } catch {
      return '?'
    }
  }
  return {
    node: process.versions.node,
    aedes: pkg('aedes'),
    mqtt: pkg('mqtt'),
    ioredis: pkg('ioredis'),
    redis: cmd('redis-server', ['--version'], /v=(\S+)/),
    influxdb: cmd('influxd', ['version'], /InfluxDB v?(\S+)/),
    postgresql: cmd('psql', ['--version'], /(\d+\.\d+)/),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? '?'
  }
}
