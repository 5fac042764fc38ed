// Make sure Redis, PostgreSQL and InfluxDB run before any test (the same script the demo and CI use).
import { execFileSync } from 'node:child_process'

export default function setup(): void {
  execFileSync('bash', ['scripts/services.sh'], { stdio: 'inherit' })
}
