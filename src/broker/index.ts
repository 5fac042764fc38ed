/**
 * The embedded MQTT broker (aedes): device authentication, topic ACL, payload validation and durable ingest.
 *
 * Acknowledged means durable: aedes writes a QoS 1 PUBACK right after `authorizePublish` calls back (and before
 * its `published` hook), so this is where a message is validated and appended to the ingest log. A PUBACK is
 * therefore sent only for messages Redis already holds. If the append fails the connection is dropped unacknowledged
 * and the device sends again.
 *
 * A payload that fails validation is acknowledged and dropped (counted, logged): refusing it by disconnecting
 * would make the device resend it forever and block its later messages. ACL violations do disconnect.
 */
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { Aedes, type Client, type AuthenticateError } from 'aedes'
import type { Logger } from '../logger.js'
import type { ProfileMap } from '../ingest/profiles.js'
import type { IngestLog } from '../ingest/ingest-log.js'
import type { Rejections } from '../ingest/rejections.js'
import { normalize } from '../ingest/normalize.js'
import type { DeviceIdentity } from '../ingest/types.js'
import { MAX_PAYLOAD_BYTES } from '../../schemas/device-payloads.js'
import { DeviceAuthenticator } from './authenticate.js'
import { FrameGuard } from './frame-guard.js'
import type { Presence } from './presence.js'
import { authorizeDevicePublish, authorizeDeviceSubscribe } from './topics.js'

// Room for the topic, properties and headers around a maximal payload.
const MAX_FRAME_BYTES = MAX_PAYLOAD_BYTES + 1024

export interface BrokerOptions {
  host: string
  port: number
  tls: { port: number; cert: Buffer; key: Buffer } | null
  authenticator: DeviceAuthenticator
  profiles: ProfileMap
  ingestLog: IngestLog
  presence: Presence
  rejections: Rejections
  log: Logger
  /**
   * Integrations subscribe to the alert topics (`v1/alerts/{unitId}`) by logging in as `$integrator` with an API key:
   * this resolves the key to its scope (a jurisdiction id, or null for every one), or throws when it is not valid.
   * Absent: no integrator logins.
   */
  integratorScope?: (apiKey: string) => Promise<string | null>
  /** Whether a unit lies in a jurisdiction subtree (for integrators' subscriptions). */
  unitInScope?: (unitId: string, scope: string) => Promise<boolean>
}

/** The username of read-only alert subscribers; `$` cannot start a device id, so no device can take it. */
export const INTEGRATOR_USERNAME = '$integrator'

type DeviceClient = Client & {
  device?: DeviceIdentity
  /** Another connection that logged in as the same device; this one is being closed [MQTT-3.1.4-2]. */
  replacedBy?: Client
  /** A read-only subscriber of the alert topics, with its API key's scope. */
  integrator?: { scope: string | null }
}

export interface Broker {
  readonly aedes: Aedes
  readonly port: number
  readonly tlsPort: number | null
  close(): Promise<void>
}

function authError(code: 2 | 3 | 4): AuthenticateError {
  const message = code === 4 ? 'bad username or password' : code === 2 ? 'identifier rejected' : 'server unavailable'
  return Object.assign(new Error(message), { returnCode: code })
}

/** `v1/alerts/{unitId}`, `v1/alerts/+` or `v1/alerts/#`: the alert topics and nothing else. */
function isAlertFilter(topic: string): boolean {
  return /^v1\/alerts\/(#|\+|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/.test(topic)
}

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const { log, rejections, presence } = opts
  let closing = false
  const sockets = new Set<net.Socket>()

  const aedes = await Aedes.createBroker({
    // Devices send small messages; a client that stops reading its socket is cut off after 30 s.
    drainTimeout: 30_000,
    connectTimeout: 10_000,
    maxClientsIdLength: 64,

    authenticate(client: DeviceClient, username, password, done) {
      const id = client.id
      if (username === INTEGRATOR_USERNAME) {
        // A client id that is not a device id ('$' cannot start one), so an integration never displaces a device.
        if (!id.startsWith('$')) {
          rejections.record('bad_credentials', id, 'integrator client id must start with $')
          return done(authError(2), false) // 2: identifier rejected
        }
        // A persistent session would make the broker queue every alert in memory while the integration is away.
        if (!client.clean) {
          rejections.record('bad_credentials', id, 'integrators connect with a clean session')
          return done(authError(2), false)
        }
        if (!opts.integratorScope || !password) {
          rejections.record('bad_credentials', id, 'integrator login without an API key')
          return done(authError(4), false)
        }
        opts.integratorScope(password.toString()).then(
          (scope) => {
            client.integrator = { scope }
            done(null, true)
          },
          () => {
            rejections.record('bad_credentials', id, 'integrator login with an unknown or revoked API key')
            done(authError(4), false)
          }
        )
        return
      }
      opts.authenticator.verify(id, username, password, (client.conn as { remoteAddress?: string }).remoteAddress).then(
        (result) => {
          if (!result.ok) {
            rejections.record(result.reason, id, result.detail)
            return done(authError(result.reason === 'login_throttled' ? 3 : 4), false)
          }
          if (!opts.profiles.has(result.device.profile)) {
            // A server without the device's profile could only acknowledge and drop its messages: refuse it instead,
            // so the device keeps them and sends again once the profile is back.
            log.error({ deviceId: id, profile: result.device.profile }, 'device profile not loaded; login refused')
            return done(authError(3), false)
          }
          client.device = result.device
          const previous = (aedes as unknown as { clients: Record<string, DeviceClient | undefined> }).clients[id]
          if (previous && previous !== client) previous.replacedBy = client
          done(null, true)
        },
        (err: Error) => {
          log.error({ err, deviceId: id }, 'device authentication failed')
          done(Object.assign(err, { returnCode: 3 as const }), false) // 3: server unavailable
        }
      )
    },

    authorizePublish(client: DeviceClient | null, packet, done) {
      const device = client?.device
      if (client?.integrator) {
        rejections.record('acl_publish', client.id, `integrator publish to ${packet.topic}`)
        return done(new Error('integrators only subscribe'))
      }
      if (!client || !device) return done(new Error('publish from an unauthenticated connection'))
      // The will of a connection that was replaced by a newer one, or closed because the server is stopping, says
      // nothing about the device: it is not stored, and aedes does not publish it.
      // (A replacement that itself died before taking over does not count: the device really is gone.)
      const replaced = client.replacedBy !== undefined && !client.replacedBy.closed
      if (packet === (client as { will?: unknown }).will && (replaced || closing)) return done(new Error('will suppressed'))
      const topic = authorizeDevicePublish(device.deviceId, packet.topic)
      if (!topic.ok) {
        rejections.record(topic.reason, device.deviceId, `topic ${packet.topic}`)
        // [MQTT-3.3.5-2] an unauthorized PUBLISH may be answered by closing the connection.
        return done(new Error(`${topic.reason}: ${packet.topic}`))
      }
      const result = normalize(device, opts.profiles.get(device.profile)!, topic.type, packet.payload as Buffer, Date.now())
      if (!result.ok) {
        rejections.record(result.reason, device.deviceId, result.detail, { topic: packet.topic })
        packet.retain = false // aedes must not keep a refused message as the topic's retained one
        return done(null)
      }
      const message = result.message
      opts.ingestLog.appendThen(message, packet.payload as Buffer, (err) => {
        if (err) {
          log.error({ err, deviceId: device.deviceId }, 'ingest log unavailable; message not acknowledged')
          return done(err)
        }
        const status = message.type === 'status' ? message.items[0]!.status === 'online' : null
        presence.seen(device.deviceId, client, status, device.unitId)
        done(null)
      })
    },

    authorizeSubscribe(client: DeviceClient, sub, done) {
      if (client.integrator) {
        const scope = client.integrator.scope
        const refuse = () => {
          rejections.record('acl_subscribe', client.id, `integrator subscribe to ${sub.topic}`)
          done(null, null)
        }
        const grant = () => done(null, { ...sub, qos: Math.min(sub.qos, 1) as 0 | 1 })
        if (!isAlertFilter(sub.topic)) return refuse()
        const unitId = sub.topic.slice('v1/alerts/'.length)
        if (scope === null) return grant()
        // A key bound to a jurisdiction subscribes unit by unit, within its subtree; wildcards would reach beyond it.
        if (unitId === '+' || unitId === '#' || !opts.unitInScope) return refuse()
        opts.unitInScope(unitId, scope).then((ok) => (ok ? grant() : refuse()), refuse)
        return
      }
      const deviceId = client.device?.deviceId ?? client.id
      if (!client.device || !authorizeDeviceSubscribe(deviceId, sub.topic)) {
        rejections.record('acl_subscribe', deviceId, `topic ${sub.topic}`)
        return done(null, null) // SUBACK 0x80 for this filter; the connection stays
      }
      done(null, { ...sub, qos: Math.min(sub.qos, 1) as 0 | 1 })
    }
  })

  aedes.on('clientReady', (client: DeviceClient) => {
    if (client.device) presence.connected(client.device.deviceId, client, client.device.unitId)
  })
  aedes.on('clientDisconnect', (client: DeviceClient) => {
    if (client.device) presence.disconnected(client.device.deviceId, client)
  })
  aedes.on('clientError', (client: DeviceClient, err) => {
    log.debug({ err, deviceId: client.device?.deviceId ?? client.id }, 'client connection error')
  })
  aedes.on('connectionError', (client: DeviceClient, err) => {
    log.debug({ err, clientId: client.id }, 'connection refused')
  })

  const accept = (socket: net.Socket) => {
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const guarded = new FrameGuard(socket, MAX_FRAME_BYTES, (err) => {
      const client = (guarded as unknown as { client?: DeviceClient }).client
      rejections.record('frame_too_large', client?.device?.deviceId ?? client?.id ?? null, err.message, {
        remoteAddress: socket.remoteAddress
      })
    })
    aedes.handle(guarded)
  }

  const server = net.createServer(accept)
  server.listen(opts.port, opts.host)
  await once(server, 'listening')
  let tlsServer: tls.Server | null = null
  if (opts.tls) {
    tlsServer = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key }, accept)
    tlsServer.listen(opts.tls.port, opts.host)
    await once(tlsServer, 'listening')
  }
  const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port

  return {
    aedes,
    port: portOf(server),
    tlsPort: tlsServer ? portOf(tlsServer) : null,
    async close() {
      closing = true
      const listeners = [new Promise<void>((r) => server.close(() => r()))]
      if (tlsServer) listeners.push(new Promise<void>((r) => tlsServer.close(() => r())))
      await new Promise<void>((r) => aedes.close(() => r()))
      // Connections aedes never took on (no CONNECT yet, a TLS handshake) would keep the listeners open.
      for (const socket of sockets) socket.destroy()
      await Promise.all(listeners)
    }
  }
}
