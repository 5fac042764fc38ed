/** The device contract's topics and who may use them (docs/PROTOCOL.md). Pure. */
import type { MessageType } from '../ingest/types.js'

const UP: Record<string, MessageType> = { telemetry: 'telemetry', events: 'event', status: 'status' }

export function parseDeviceTopic(topic: string): { deviceId: string; leaf: string } | null {
  const parts = topic.split('/')
  if (parts.length !== 4 || parts[0] !== 'v1' || parts[1] !== 'devices' || !parts[2]) return null
  return { deviceId: parts[2], leaf: parts[3]! }
}

export type PublishDecision = { ok: true; type: MessageType } | { ok: false; reason: 'acl_publish' | 'unknown_topic' }

// The decisions for the upward topics, made once: this runs for every message.
const ALLOWED: Record<string, PublishDecision> = {
  telemetry: { ok: true, type: 'telemetry' },
  events: { ok: true, type: 'event' },
  status: { ok: true, type: 'status' }
}
const DEVICES = 'v1/devices/'

/** A device publishes only under its own `v1/devices/{id}/`, and only the upward topics. */
export function authorizeDevicePublish(deviceId: string, topic: string): PublishDecision {
  // Every message takes this path: its own prefix and an upward leaf, checked without splitting the topic. (Device
  // ids never hold '/', and a leaf with one is no upward leaf, so this accepts exactly what the split below accepts.)
  const leafAt = DEVICES.length + deviceId.length + 1
  if (topic.startsWith(DEVICES) && topic.startsWith(deviceId, DEVICES.length) && topic.charCodeAt(leafAt - 1) === 47) {
    const leaf = topic.slice(leafAt)
    if (Object.hasOwn(ALLOWED, leaf)) return ALLOWED[leaf]!
  }
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
