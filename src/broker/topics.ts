/** The device contract's topics and who may use them (docs/PROTOCOL.md). Pure. */
import type { MessageType } from '../ingest/types.js'

const UP: Record<string, MessageType> = { telemetry: 'telemetry', events: 'event', status: 'status' }

export function parseDeviceTopic(topic: string): { deviceId: string; leaf: string } | null {
  const parts = topic.split('/')
  if (parts.length !== 4 || parts[0] !== 'v1' || parts[1] !== 'devices' || !parts[2]) return null
  return { deviceId: parts[2], leaf: parts[3]! }
}

export type PublishDecision = { ok: true; type: MessageType } | { ok: false; reason: 'acl_publish' | 'unknown_topic' }

/** A device publishes only under its own `v1/devices/{id}/`, and only the upward topics. */
export function authorizeDevicePublish(deviceId: string, topic: string): PublishDecision {
  const t = parseDeviceTopic(topic)
  if (!t || t.deviceId !== deviceId) return { ok: false, reason: 'acl_publish' }
  const type = UP[t.leaf]
  return type ? { ok: true, type } : { ok: false, reason: t.leaf === 'commands' ? 'acl_publish' : 'unknown_topic' }
}

/** A device subscribes only to its own `commands` (no wildcards). */
export function authorizeDeviceSubscribe(deviceId: string, topic: string): boolean {
  return topic === commandsTopic(deviceId)
}

export const commandsTopic = (deviceId: string) => `v1/devices/${deviceId}/commands`
