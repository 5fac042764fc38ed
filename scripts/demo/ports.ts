/** Which ports the demo listens on, and whether something listens on one. */
import net from 'node:net'
import { DemoError } from './errors.js'
import type { Options } from './options.js'
import { bold, warn } from './output.js'

/** Whether `port` can be listened on at `host` right now. */
function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/** Whether something accepts TCP connections at host:port now. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.setTimeout(1000)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}

/** Free ports the kernel picks, held together so that they differ. */
export async function freePorts(host: string, count: number): Promise<number[]> {
  const servers: net.Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port: 0, exclusive: true }, () => resolve())
      })
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  }
}

export interface DemoPorts {
  http: number
  mqtt: number
  /** The GB/T 26875.3 gateway's (GB26875_PORT). */
  gb26875: number
}

/**
 * The server's ports: the ones asked for, else HTTP 8080 and MQTT 1883, else free ones (with a warning). The
 * GB/T 26875.3 gateway has no usual port (the standard names none): a free one unless asked for.
 */
export async function pickPorts(opts: Options): Promise<DemoPorts> {
  const wanted: { name: string; flag: string; explicit: number | null; fallback: number | null; hint: string }[] = [
    { name: 'HTTP', flag: '--http-port', explicit: opts.httpPort, fallback: 8080, hint: '' },
    { name: 'MQTT', flag: '--mqtt-port', explicit: opts.mqttPort, fallback: 1883, hint: ' (Mosquitto usually holds it)' },
    { name: 'GB/T 26875.3', flag: '--gb26875-port', explicit: opts.gb26875Port, fallback: null, hint: '' }
  ]
  const spare = await freePorts(opts.host, wanted.length)
  const chosen: number[] = []
  for (const [i, w] of wanted.entries()) {
    const port = w.explicit ?? w.fallback
    if (port === null) {
      chosen.push(spare.find((p) => !chosen.includes(p)) ?? spare[i]!)
      continue
    }
    if (!chosen.includes(port) && (await canListen(opts.host, port))) {
      chosen.push(port)
      continue
    }
    if (w.explicit !== null) throw new DemoError(`${w.name} port ${port} (${w.flag}) is taken on ${opts.host}; choose another`)
    const other = spare.find((p) => !chosen.includes(p)) ?? spare[i]!
    chosen.push(other)
    warn(`${w.name} port ${port} is taken on ${opts.host}${w.hint}: using ${bold(String(other))} instead`)
  }
  return { http: chosen[0]!, mqtt: chosen[1]!, gb26875: chosen[2]! }
}
