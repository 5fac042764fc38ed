/** Webhook subscriptions and their dead letters: API bodies and replies (docs/NOTIFICATIONS.md). */
import { Type, type Static } from '@sinclair/typebox'
import { Id } from './api.js'

const Timestamp = Type.String({ format: 'date-time' })
/** Test alerts never notify, so a webhook cannot ask for them. */
export const WEBHOOK_CLASSES = ['fire', 'supervisory', 'trouble', 'isolation'] as const
const Classes = Type.Array(Type.Union(WEBHOOK_CLASSES.map((c) => Type.Literal(c))), {
  minItems: 1,
  uniqueItems: true,
  description: 'alert classes whose notifications it receives'
})
// No user:password@ (the authority holds no '@'): fetch refuses such a URL, naming it whole in an error that is logged.
const Url = Type.String({
  format: 'uri',
  pattern: '^https?://[^/?#@]+([/?#].*)?$',
  maxLength: 2000,
  description: 'http(s) URL the deliveries are POSTed to, without user:password@ (a token goes in the path or query)'
})
const Name = Type.String({ minLength: 1, maxLength: 200 })

export const WebhookCreate = Type.Object(
  {
    name: Name,
    url: Url,
    jurisdictionId: Type.Union([Id, Type.Null()], { description: "subtree it covers; null: every jurisdiction (administrators of the whole system only)" }),
    classes: Classes,
    enabled: Type.Optional(Type.Boolean({ default: true }))
  },
  { additionalProperties: false }
)
export type WebhookCreate = Static<typeof WebhookCreate>

export const WebhookPatch = Type.Object(
  {
    name: Type.Optional(Name),
    url: Type.Optional(Url),
    jurisdictionId: Type.Optional(Type.Union([Id, Type.Null()])),
    classes: Type.Optional(Classes),
    enabled: Type.Optional(Type.Boolean())
  },
  { additionalProperties: false, minProperties: 1 }
)
export type WebhookPatch = Static<typeof WebhookPatch>

export const Webhook = Type.Object({
  id: Type.String({ pattern: '^[0-9]+$' }),
  name: Type.String(),
  url: Type.String(),
  jurisdictionId: Type.Union([Id, Type.Null()]),
  classes: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  createdAt: Timestamp,
  createdBy: Type.String(),
  updatedAt: Timestamp
})
export type Webhook = Static<typeof Webhook>

export const WebhookCreated = Type.Intersect([
  Webhook,
  Type.Object({ secret: Type.String({ description: 'HMAC-SHA256 key of the signatures; shown only in this reply' }) })
])

export const DeadLetter = Type.Object({
  id: Type.String({ pattern: '^[0-9]+$' }),
  webhookId: Type.String(),
  deliveryId: Type.String(),
  body: Type.String({ description: 'the request body as it was sent' }),
  attempts: Type.Integer(),
  lastStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt; null: no answer' }),
  lastError: Type.String(),
  createdAt: Timestamp
})
export type DeadLetter = Static<typeof DeadLetter>

export const DeadLettersQuery = Type.Object({
  webhookId: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 })
})
export type DeadLettersQuery = Static<typeof DeadLettersQuery>
