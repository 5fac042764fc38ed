/** Device credentials for the load generator: read from or saved to a JSON file, or provisioned through the API. */
import { readFile, writeFile } from 'node:fs/promises'
import type { DeviceCredentials } from './device-client.js'
import { mapLimit } from './map-limit.js'

export async function readCredentials(file: string): Promise<DeviceCredentials[]> {
  const doc: unknown = JSON.parse(await readFile(file, 'utf8'))
  const ok = (d: unknown): d is DeviceCredentials =>
    typeof d === 'object' && d !== null && typeof (d as DeviceCredentials).id === 'string' && typeof (d as DeviceCredentials).secret === 'string'
  if (!Array.isArray(doc) || !doc.every(ok)) throw new Error(`${file}: expected a JSON array of {"id": …, "secret": …}`)
  return doc.map(({ id, secret }) => ({ id, secret }))
}

/** Written readable by the owner only: the file holds secrets. */
export async function saveCredentials(file: string, devices: DeviceCredentials[]): Promise<void> {
  await writeFile(file, JSON.stringify(devices, null, 2) + '\n', { mode: 0o600 })
}

export interface ProvisionOptions {
  /** Base URL of the Firewatch HTTP API, e.g. http://127.0.0.1:8080 */
  api: string
  /** An admin bearer token. */
  token: string
  unitId: string
  ids: string[]
  /** Requests at a time: each makes the server hash a new secret. @defaultValue 10 */
  concurrency?: number
}

/** Create sprinkler_pressure devices through `POST /api/v1/devices`; the reply carries each secret, once. */
export async function provisionDevices(opts: ProvisionOptions): Promise<DeviceCredentials[]> {
  const url = new URL('/api/v1/devices', opts.api).toString()
  const create = async (id: string): Promise<DeviceCredentials> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, unitId: opts.unitId, kind: 'sprinkler_pressure' })
    })
    const body = (await res.json().catch(() => ({}))) as { secret?: string; message?: string }
    if (res.status !== 201 || !body.secret) {
      throw new Error(`provisioning ${id} failed: HTTP ${res.status} ${body.message ?? ''}`.trim())
    }
    return { id, secret: body.secret }
  }
  return mapLimit(opts.ids, opts.concurrency ?? 10, create)
}
