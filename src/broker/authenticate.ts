/**
 * Device login: username and client id are the device id, the password its secret (scrypt-hashed in PostgreSQL).
 * A successful check is remembered, in memory and in Redis for 24 h, as a SHA-256 digest of (stored hash, secret),
 * so a reconnect storm after a power cut or a server restart does not cost one slow hash per device: at ~50 ms of
 * scrypt each, 150,000 devices would need over an hour of CPU to get back in. Remembering a fast digest is safe
 * because device secrets are 256 random bits (secrets.ts): no digest of one can be guessed back. A changed secret
 * changes the stored hash, so its digest no longer matches.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RegistryRepository } from '../store/registry-repository.js'
import type { DeviceIdentity, RejectReason } from '../ingest/types.js'
import { verifySecret } from './secrets.js'

const MAX_CONCURRENT_HASHES = 2
const MAX_QUEUED_HASHES = 500

export type AuthResult = { ok: true; device: DeviceIdentity } | { ok: false; reason: RejectReason; detail: string }

export class DeviceAuthenticator {
  private verified = new Map<string, { digest: string; until: number }>()
  /** (device, peer address) pairs whose last logins failed: no slow hash for them until `until` (1 s doubling to 60 s). */
  private failures = new Map<string, { count: number; until: number }>()
  /** Devices with an unproven secret being hashed right now. */
  private checking = new Set<string>()
  private hashing = 0
  private running = 0
  private waiting: (() => void)[] = []

  constructor(
    private readonly registry: RegistryRepository,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly cacheMs = 10 * 60_000,
    private readonly cacheSize = 200_000
  ) {}

  /** @param from the peer's address: a failed guess backs off that address, not the device everywhere. */
  async verify(clientId: string, username: string | undefined, password: Buffer | undefined, from = ''): Promise<AuthResult> {
    if (!username || !password || username !== clientId) {
      return { ok: false, reason: 'bad_credentials', detail: 'username must equal the client id (the device id), with a password' }
    }
    const creds = await this.registry.getCredentials(clientId)
    if (!creds) return { ok: false, reason: 'unknown_device', detail: 'no such device' }
    if (!creds.secretHash || creds.protocol !== 'mqtt') {
      return { ok: false, reason: 'bad_credentials', detail: `device uses protocol ${creds.protocol}, not MQTT` }
    }
    const device = { deviceId: creds.id, unitId: creds.unitId, profile: creds.profile }
    const digest = createHash('sha256').update(creds.secretHash).update(password).digest('base64')
    const cached = this.verified.get(clientId)
    if (cached && same(cached.digest, digest) && cached.until > Date.now()) return { ok: true, device }

    const key = `${this.prefix}auth:${clientId}`
    // A Redis failure only costs the shortcut, never the login.
    // Reading the digest renews it: a device online for days still has it when a power cut sends everyone back.
    const shared = await this.redis.getex(key, 'EX', 24 * 3600).catch(() => null)
    if (shared === null || !same(shared, digest)) {
      // Only unproven secrets reach the slow hash, and not too many at once, so a flood of wrong passwords can
      // neither take the CPU nor lock out a device whose secret was verified before (it matched a digest above).
      const peer = `${clientId}|${from}`
      const blocked = this.failures.get(peer)
      if (blocked && blocked.until > Date.now()) {
        return { ok: false, reason: 'login_throttled', detail: `${blocked.count} failed logins; next check after ${new Date(blocked.until).toISOString()}` }
      }
      // One unproven secret per device at a time: a burst of guesses must not all be hashed before the first fails.
      if (this.checking.has(clientId) || this.hashing >= MAX_CONCURRENT_HASHES + MAX_QUEUED_HASHES) {
        return { ok: false, reason: 'login_throttled', detail: 'a login of this device, or too many logins, being checked' }
      }
      this.checking.add(clientId)
      let valid: boolean
      try {
        valid = await this.slowVerify(password.toString('utf8'), creds.secretHash)
      } finally {
        this.checking.delete(clientId)
      }
      if (!valid) {
        const count = (this.failures.get(peer)?.count ?? 0) + 1
        if (this.failures.size >= this.cacheSize) this.failures.delete(this.failures.keys().next().value!)
        this.failures.set(peer, { count, until: Date.now() + Math.min(60_000, 500 * 2 ** count) })
        return { ok: false, reason: 'bad_credentials', detail: 'wrong secret' }
      }
      this.failures.delete(peer)
      await this.redis.set(key, digest, 'EX', 24 * 3600).catch(() => undefined)
    }
    this.remember(clientId, digest)
    return { ok: true, device }
  }

  /** scrypt on at most MAX_CONCURRENT_HASHES threads of libuv's pool, leaving the rest to DNS and files. */
  private async slowVerify(secret: string, hash: string): Promise<boolean> {
    this.hashing++
    try {
      while (this.running >= MAX_CONCURRENT_HASHES) await new Promise<void>((r) => this.waiting.push(r))
      this.running++
      try {
        return await verifySecret(secret, hash)
      } finally {
        this.running--
        this.waiting.shift()?.()
      }
    } finally {
      this.hashing--
    }
  }

  private remember(clientId: string, digest: string): void {
    if (this.verified.size >= this.cacheSize) this.verified.delete(this.verified.keys().next().value!)
    this.verified.delete(clientId)
    this.verified.set(clientId, { digest, until: Date.now() + this.cacheMs })
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
