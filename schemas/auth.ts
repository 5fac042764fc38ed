/** Login, sessions, users and API keys: request and reply bodies. */
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox'
import { Id } from './api.js'

const lit = <T extends string>(values: readonly T[]): TUnion<TLiteral<T>[]> => Type.Union(values.map((v) => Type.Literal(v)))
const Timestamp = Type.String({ format: 'date-time' })
export const RoleSchema = lit(['admin', 'operator', 'inspector', 'viewer'] as const)
const Username = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$', description: 'letters, digits, _ . @ -' })
// NIST SP 800-63B: at least 8 characters, no composition rules, long passphrases allowed.
const Password = Type.String({ minLength: 8, maxLength: 256 })

export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  displayName: Type.String(),
  role: RoleSchema,
  jurisdictionId: Type.Union([Id, Type.Null()], { description: 'the subtree the user sees; null: every jurisdiction (admins only)' }),
  disabled: Type.Boolean(),
  createdAt: Timestamp,
  createdBy: Type.String()
})

export const LoginBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false })
export const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false })
export const SessionReply = Type.Object({
  accessToken: Type.String({ description: 'send as Authorization: Bearer; expires after expiresIn seconds' }),
  refreshToken: Type.String({ description: 'exchange at /auth/refresh for a new pair; each works once' }),
  expiresIn: Type.Integer(),
  user: User
})

export const BootstrapBody = Type.Object(
  { username: Username, displayName: Type.String({ minLength: 1, maxLength: 100 }), password: Password },
  { additionalProperties: false }
)

export const UserCreate = Type.Object(
  {
    username: Username,
    displayName: Type.String({ minLength: 1, maxLength: 100 }),
    password: Password,
    role: RoleSchema,
    jurisdictionId: Type.Union([Id, Type.Null()])
  },
  { additionalProperties: false }
)
export type UserCreate = Static<typeof UserCreate>

export const UserPatch = Type.Object(
  {
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    password: Type.Optional(Password),
    role: Type.Optional(RoleSchema),
    disabled: Type.Optional(Type.Boolean())
  },
  { additionalProperties: false, minProperties: 1 }
)

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  jurisdictionId: Type.Union([Id, Type.Null()]),
  createdAt: Timestamp,
  createdBy: Type.String(),
  revokedAt: Type.Union([Timestamp, Type.Null()]),
  lastUsedAt: Type.Union([Timestamp, Type.Null()])
})
export const ApiKeyCreate = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), role: RoleSchema, jurisdictionId: Type.Union([Id, Type.Null()]) },
  { additionalProperties: false }
)
export const ApiKeyCreated = Type.Object({ key: Type.String({ description: 'shown only in this reply; send as Authorization: Bearer' }), apiKey: ApiKey })

export const Me = Type.Object({
  kind: lit(['user', 'api_key'] as const),
  id: Type.String(),
  name: Type.String(),
  displayName: Type.String(),
  role: RoleSchema,
  jurisdictionId: Type.Union([Id, Type.Null()])
})
