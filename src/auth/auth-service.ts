/**
 * Users, sessions and API keys.
 *
 * - Passwords: scrypt (the device-secret scheme), compared in constant time.
 * - Access tokens: JWT (HS256, `jose`), short-lived (ACCESS_TOKEN_TTL_S, default 15 min); the role and scope are read
 *   again from PostgreSQL on every request, so a disabled user or a changed role takes effect at once.
 * - Refresh tokens: opaque `{id}.{secret}`, stored as SHA-256 of the secret, rotated on every use; a refresh token
 *   used twice means it was copied, and the whole family (every token descended from that login) is revoked.
 * - API keys: `fwk_{id}_{secret}`, stored as SHA-256 of the secret (256 random bits: a fast hash is enough), shown once.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { SignJWT, jwtVerify } from 'jose'
import type { Pool } from '../store/postgres.js'
import { hashSecret, verifySecret } from '../broker/secrets.js'
import { FirewatchError } from '../errors.js'
import type { Principal, Role } from './principal.js'

export interface AuthOptions {
  /** HMAC key of access tokens. */
  jwtSecret: Buffer
  accessTtlS: number
  refreshTtlS: number
}

export interface User {
  id: string
  username: string
  displayName: string
  role: Role
  jurisdictionId: string | null
  disabled: boolean
  createdAt: string
  createdBy: string
}

export interface ApiKey {
  id: string
  name: string
  role: Role
  jurisdictionId: string | null
  createdAt: string
  createdBy: string
  revokedAt: string | null
  lastUsedAt: string | null
}

export interface Session {
  accessToken: string
  refreshToken: string
  expiresIn: number
  user: User
}

type Row = Record<string, unknown>
/** The pool, or a client inside the caller's transaction (which then also records the change in the audit trail). */
type Db = { query: Pool['query'] }
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : null)
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url')
const sameDigest = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

const toUser = (r: Row): User => ({
  id: r.id as string,
  username: r.username as string,
  displayName: r.display_name as string,
  role: r.role as Role,
  jurisdictionId: (r.jurisdiction_id as string | null) ?? null,
  disabled: r.disabled as boolean,
  createdAt: iso(r.created_at)!,
  createdBy: r.created_by as string
})

const toKey = (r: Row): ApiKey => ({
  id: r.id as string,
  name: r.name as string,
  role: r.role as Role,
  jurisdictionId: (r.jurisdiction_id as string | null) ?? null,
  createdAt: iso(r.created_at)!,
  createdBy: r.created_by as string,
  revokedAt: iso(r.revoked_at),
  lastUsedAt: iso(r.last_used_at)
})

const unauthorized = (message = 'a valid bearer token is required') => new FirewatchError('FW_ERR_UNAUTHORIZED', message, { statusCode: 401 })

/** A password hash to compare against when the user does not exist, so both paths cost one scrypt. */
let dummyHash: Promise<string> | null = null

/** The default access-token key when JWT_SECRET is not set: derived from the admin token, stable across restarts. */
export function deriveJwtSecret(adminToken: string): Buffer {
  return createHmac('sha256', adminToken).update('firewatch access tokens v1').digest()
}

export class AuthService {
  private readonly key: Uint8Array

  constructor(
    private readonly pool: Pool,
    private readonly opts: AuthOptions
  ) {
    this.key = new Uint8Array(opts.jwtSecret)
  }

  async hasAdmin(): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT 1 FROM users WHERE role = 'admin' AND NOT disabled LIMIT 1`)
    return rows.length > 0
  }

  async createUser(
    body: { username: string; displayName: string; password: string; role: Role; jurisdictionId: string | null },
    createdBy: string,
    db: Db = this.pool
  ): Promise<User> {
    const hash = await hashSecret(body.password)
    try {
      const { rows } = await db.query(
        `INSERT INTO users (id, username, display_name, password_hash, role, jurisdiction_id, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [randomUUID(), body.username, body.displayName, hash, body.role, body.jurisdictionId, createdBy]
      )
      return toUser(rows[0] as Row)
    } catch (err) {
      const e = err as { code?: string }
      if (e.code === '23505') throw new FirewatchError('FW_ERR_CONFLICT', `username ${body.username} is taken`, { statusCode: 409, field: 'username' })
      if (e.code === '23503') throw new FirewatchError('FW_ERR_VALIDATION', 'jurisdictionId does not exist', { statusCode: 400, field: 'jurisdictionId' })
      throw err
    }
  }

  async updateUser(id: string, patch: { displayName?: string; password?: string; role?: Role; disabled?: boolean }, db: Db = this.pool): Promise<User | null> {
    const sets: string[] = []
    const args: unknown[] = [id]
    const set = (col: string, v: unknown) => {
      args.push(v)
      sets.push(`${col} = $${args.length}`)
    }
    if (patch.displayName !== undefined) set('display_name', patch.displayName)
    if (patch.password !== undefined) set('password_hash', await hashSecret(patch.password))
    if (patch.role !== undefined) set('role', patch.role)
    if (patch.disabled !== undefined) set('disabled', patch.disabled)
    if (sets.length === 0) return this.getUser(id)
    const { rows } = await db.query(`UPDATE users SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, args)
    // A new password or a disabled account ends every session of the user.
    if (rows[0] && (patch.password !== undefined || patch.disabled)) {
      await db.query('UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [id])
    }
    return rows[0] ? toUser(rows[0] as Row) : null
  }

  async getUser(id: string): Promise<User | null> {
    const { rows } = await this.pool.query('SELECT * FROM users WHERE id = $1', [id])
    return rows[0] ? toUser(rows[0] as Row) : null
  }

  /** Users whose jurisdiction lies in `scope` (null: all). */
  async listUsers(scope: string | null, page: { limit: number; offset: number }): Promise<{ items: User[]; total: number }> {
    const { rows } = await this.pool.query(
      `SELECT u.*, count(*) OVER () AS total FROM users u LEFT JOIN jurisdictions j ON j.id = u.jurisdiction_id
       WHERE $3::text IS NULL OR $3 = ANY (j.ancestors)
       ORDER BY u.username LIMIT $1 OFFSET $2`,
      [page.limit, page.offset, scope]
    )
    return { items: rows.map((r) => toUser(r as Row)), total: Number((rows[0] as Row | undefined)?.total ?? 0) }
  }

  /** Check a password; null when wrong, unknown or disabled (one slow hash either way). */
  async checkPassword(username: string, password: string): Promise<User | null> {
    const { rows } = await this.pool.query('SELECT * FROM users WHERE username = $1', [username])
    const r = rows[0] as Row | undefined
    dummyHash ??= hashSecret(randomBytes(16).toString('hex'))
    const ok = await verifySecret(password, (r?.password_hash as string | undefined) ?? (await dummyHash))
    if (!r || !ok || r.disabled) return null
    return toUser(r)
  }

  /** A new session for a user whose password was checked. */
  async startSession(user: User): Promise<Session> {
    return this.issue(user, randomUUID())
  }

  /** Exchange a refresh token for a new pair; a token used twice revokes its family. */
  async refresh(token: string): Promise<Session> {
    const [id, secret] = token.split('.')
    if (!id || !secret) throw unauthorized('not a refresh token')
    const c = await this.pool.connect()
    try {
      await c.query('BEGIN')
      const { rows } = await c.query('SELECT * FROM refresh_tokens WHERE id = $1 FOR UPDATE', [id])
      const r = rows[0] as Row | undefined
      if (!r || !sameDigest(r.token_hash as string, sha256(secret))) throw unauthorized('refresh token unknown')
      if (r.used_at || r.revoked_at) {
        // A used token presented again: someone else has a copy. End every session of that login.
        await c.query('UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL', [r.family])
        await c.query('COMMIT')
        throw unauthorized('refresh token already used; the session is ended, log in again')
      }
      if ((r.expires_at as Date).getTime() <= Date.now()) throw unauthorized('refresh token expired; log in again')
      await c.query('UPDATE refresh_tokens SET used_at = now() WHERE id = $1', [id])
      const { rows: users } = await c.query('SELECT * FROM users WHERE id = $1', [r.user_id])
      const u = users[0] as Row | undefined
      if (!u || u.disabled) throw unauthorized('the account is disabled')
      const session = await this.issue(toUser(u), r.family as string, c)
      await c.query('COMMIT')
      return session
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      c.release()
    }
  }

  async logout(token: string): Promise<void> {
    const [id, secret] = token.split('.')
    if (!id || !secret) return
    const { rows } = await this.pool.query('SELECT family, token_hash FROM refresh_tokens WHERE id = $1', [id])
    const r = rows[0] as Row | undefined
    if (r && sameDigest(r.token_hash as string, sha256(secret))) {
      await this.pool.query('UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL', [r.family])
    }
  }

  private async issue(user: User, family: string, c: { query: Pool['query'] } = this.pool): Promise<Session> {
    const accessToken = await new SignJWT({ role: user.role })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuedAt()
      .setExpirationTime(`${this.opts.accessTtlS}s`)
      .setIssuer('firewatch')
      .sign(this.key)
    const id = randomUUID()
    const secret = randomBytes(32).toString('base64url')
    await c.query('INSERT INTO refresh_tokens (id, family, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      id,
      family,
      user.id,
      sha256(secret),
      new Date(Date.now() + this.opts.refreshTtlS * 1000)
    ])
    return { accessToken, refreshToken: `${id}.${secret}`, expiresIn: this.opts.accessTtlS, user }
  }

  /** Who a bearer token belongs to: an access token or an API key. */
  async principal(bearer: string): Promise<Principal> {
    if (bearer.startsWith('fwk_')) return this.keyPrincipal(bearer)
    let sub: string
    try {
      const { payload } = await jwtVerify(bearer, this.key, { issuer: 'firewatch', algorithms: ['HS256'] })
      sub = String(payload.sub)
    } catch {
      throw unauthorized('the access token is invalid or expired')
    }
    const user = await this.getUser(sub)
    if (!user || user.disabled) throw unauthorized('the account is disabled')
    return { kind: 'user', id: user.id, name: user.username, role: user.role, scope: user.jurisdictionId }
  }

  async createApiKey(body: { name: string; role: Role; jurisdictionId: string | null }, createdBy: string, db: Db = this.pool): Promise<{ key: string; apiKey: ApiKey }> {
    const id = randomBytes(6).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    try {
      const { rows } = await db.query(
        `INSERT INTO api_keys (id, name, key_hash, role, jurisdiction_id, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [id, body.name, sha256(secret), body.role, body.jurisdictionId, createdBy]
      )
      return { key: `fwk_${id}_${secret}`, apiKey: toKey(rows[0] as Row) }
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw new FirewatchError('FW_ERR_VALIDATION', 'jurisdictionId does not exist', { statusCode: 400, field: 'jurisdictionId' })
      throw err
    }
  }

  async listApiKeys(scope: string | null): Promise<ApiKey[]> {
    const { rows } = await this.pool.query(
      `SELECT k.* FROM api_keys k LEFT JOIN jurisdictions j ON j.id = k.jurisdiction_id
       WHERE $1::text IS NULL OR $1 = ANY (j.ancestors) ORDER BY k.created_at`,
      [scope]
    )
    return rows.map((r) => toKey(r as Row))
  }

  async getApiKey(id: string): Promise<ApiKey | null> {
    const { rows } = await this.pool.query('SELECT * FROM api_keys WHERE id = $1', [id])
    return rows[0] ? toKey(rows[0] as Row) : null
  }

  async revokeApiKey(id: string, db: Db = this.pool): Promise<boolean> {
    const { rowCount } = await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])
    return (rowCount ?? 0) > 0
  }

  private async keyPrincipal(bearer: string): Promise<Principal> {
    const m = /^fwk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(bearer)
    if (!m) throw unauthorized('not a valid API key')
    const { rows } = await this.pool.query('SELECT * FROM api_keys WHERE id = $1', [m[1]])
    const r = rows[0] as Row | undefined
    if (!r || r.revoked_at || !sameDigest(r.key_hash as string, sha256(m[2]!))) throw unauthorized('the API key is unknown or revoked')
    // Best effort, at most once a minute per key: a busy integration must not write a row per request.
    void this.pool
      .query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, [r.id])
      .catch(() => undefined)
    return { kind: 'api_key', id: r.id as string, name: `api-key:${r.name as string}`, role: r.role as Role, scope: (r.jurisdiction_id as string | null) ?? null }
  }
}
