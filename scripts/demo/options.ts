/** The demo's command line (`npm run demo -- --help`) and its admin token. */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { GB26875_UITDS } from '../demo-gb26875.js'
import { MODBUS_DEVICES, MODBUS_GATEWAYS } from '../demo-modbus.js'
import { DEMO } from './clean-state.js'
import { DemoError } from './errors.js'

export const HELP = `Usage: npm run demo -- [options]

Runs Firewatch on this machine with a simulated city (Hangzhou: 3 districts, 20 units, ~70 devices over MQTT,
${MODBUS_DEVICES.length} devices behind ${MODBUS_GATEWAYS.length} simulated Modbus TCP gateways on free loopback ports, polled by the server,
and ${GB26875_UITDS.length} UITDs speaking GB/T 26875.3 over TCP to the server's gateway).
Uses its own databases (PostgreSQL ${DEMO.database}, InfluxDB ${DEMO.influxDb}, Redis keys ${DEMO.redisPrefix}*),
which it empties at every start. Stop it with Ctrl-C.

Options:
  --duration <s>      stop by itself after this many seconds (default: run until Ctrl-C or SIGTERM)
  --interval <ms>     how often each simulated device reports, and the Modbus simulators' scenario step (default 1000)
  --seed <n>          seed of the simulated devices' randomness (default 1)
  --http-port <port>  HTTP API port (default 8080, or a free one if 8080 is taken)
  --mqtt-port <port>  MQTT port (default 1883, or a free one if 1883 is taken, as it is where Mosquitto runs)
  --gb26875-port <port>
                      GB/T 26875.3 port of the server, for the UITDs (default: a free one; the standard names none)
  --host <address>    address the server binds (default 127.0.0.1)
  --log-level <lvl>   the server's LOG_LEVEL (default warn): fatal, error, warn, info, debug, trace, silent
  -h, --help          show this help

Environment: FIREWATCH_ADMIN_TOKEN is used as the admin token when set (at least 16 characters);
otherwise the demo makes one up and prints it. Other Firewatch variables in the environment are ignored.`

export interface Options {
  durationS: number | null
  intervalMs: number
  seed: number
  httpPort: number | null
  mqttPort: number | null
  gb26875Port: number | null
  host: string
  logLevel: string
}

/** The options in `argv`, or null when help was asked for. */
export function parseOptions(argv: string[]): Options | null {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        interval: { type: 'string' },
        seed: { type: 'string' },
        'http-port': { type: 'string' },
        'mqtt-port': { type: 'string' },
        'gb26875-port': { type: 'string' },
        host: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    throw new DemoError(`${(err as Error).message}\n\n${HELP}`)
  }
  if (values.help) return null
  const int = (name: string, raw: string | undefined, min: number, max: number): number | null => {
    if (raw === undefined) return null
    const n = Number(raw)
    if (!/^\d+$/.test(raw) || n < min || n > max) throw new DemoError(`--${name} ${raw}: expected a whole number ${min}–${max}`)
    return n
  }
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
  const logLevel = values['log-level'] ?? 'warn'
  if (!levels.includes(logLevel)) throw new DemoError(`--log-level ${logLevel}: expected one of ${levels.join(', ')}`)
  return {
    durationS: int('duration', values.duration, 1, 7 * 24 * 3600),
    intervalMs: int('interval', values.interval, 50, 3_600_000) ?? 1000,
    seed: int('seed', values.seed, 0, 2 ** 31 - 1) ?? 1,
    httpPort: int('http-port', values['http-port'], 1, 65535),
    mqttPort: int('mqtt-port', values['mqtt-port'], 1, 65535),
    gb26875Port: int('gb26875-port', values['gb26875-port'], 1, 65535),
    host: values.host ?? '127.0.0.1',
    logLevel
  }
}

/** FIREWATCH_ADMIN_TOKEN when set, else one made up for this run. */
export function adminToken(): { token: string; fromEnv: boolean } {
  const envToken = process.env.FIREWATCH_ADMIN_TOKEN
  if (envToken !== undefined && envToken !== '' && envToken.length < 16) {
    throw new DemoError('FIREWATCH_ADMIN_TOKEN is set but shorter than 16 characters; the server would refuse it')
  }
  return { token: envToken || `demo-${randomBytes(18).toString('base64url')}`, fromEnv: Boolean(envToken) }
}
