/**
 * Follow-up test fixtures: a policy file with short times (JSON is YAML), and the jurisdictions, units and inspectors
 * a case needs, created through the API.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FollowUpFile } from '../../schemas/followup-policy.js'
import type { ApiCall } from './env.js'

/** A policy with the shipped credit numbers and short times; `over` replaces top-level sections. */
export function policyDoc(over: Partial<FollowUpFile> = {}): FollowUpFile {
  return {
    defaults: { deadlineS: 3600 },
    policies: [],
    evidence: { pressureHoldS: 3, pressureMinMpa: 0.05, pressureMaxMpa: 1.2 },
    credit: {
      dishonestPoints: 10,
      points: { overdueMajor: 10, refusedRectification: 4, repeatedViolations: 4 },
      repeatedViolations: { cases: 3, withinS: 7776000 },
      repairAfterCleanS: 2592000,
      sweepEveryS: 3600
    },
    ...over
  }
}

/** Write a policy file in a new temporary folder; returns its path. */
export function writePolicy(doc: FollowUpFile | string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-followup-'))
  const file = path.join(dir, 'policy.yaml')
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2))
  return file
}

export interface Place {
  city: string
  district: string
  /** A second district of the same city. */
  other: string
}

/** A city with two districts. */
export async function createPlace(api: ApiCall): Promise<Place> {
  const tag = randomBytes(4).toString('hex')
  const place = { city: `city-${tag}`, district: `dist-${tag}`, other: `dist2-${tag}` }
  const mk = async (body: Record<string, unknown>) => {
    const r = await api('POST', '/api/v1/jurisdictions', body)
    if (r.status !== 201) throw new Error(`jurisdiction: ${r.status} ${JSON.stringify(r.body)}`)
  }
  await mk({ id: place.city, name: 'City', level: 'city' })
  await mk({ id: place.district, parentId: place.city, name: 'District', level: 'district' })
  await mk({ id: place.other, parentId: place.city, name: 'Other District', level: 'district' })
  return place
}

export async function createUnitIn(api: ApiCall, jurisdictionId: string, category = 'high_risk'): Promise<string> {
  const id = `unit-${randomBytes(4).toString('hex')}`
  const r = await api('POST', '/api/v1/units', { id, jurisdictionId, name: 'Mall', address: '1 Road', category, contactName: 'Manager', contactPhone: '0571-0000000' })
  if (r.status !== 201) throw new Error(`unit: ${r.status} ${JSON.stringify(r.body)}`)
  return id
}

/** A user of this role bound to a jurisdiction; returns its id and credentials. */
export async function createUser(api: ApiCall, role: string, jurisdictionId: string): Promise<{ id: string; username: string; password: string }> {
  const username = `${role}-${randomBytes(4).toString('hex')}`
  const password = `${username}-password`
  const r = await api<{ id: string }>('POST', '/api/v1/users', { username, displayName: username, password, role, jurisdictionId })
  if (r.status !== 201) throw new Error(`user: ${r.status} ${JSON.stringify(r.body)}`)
  return { id: r.body.id, username, password }
}
