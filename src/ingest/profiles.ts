/** Loads device profiles from devices/*.yaml; an invalid profile stops start-up with a message naming the field. */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { DeviceProfile } from '../../schemas/device-profile.js'
import { compile, describeErrors } from '../validation.js'
import { FirewatchError } from '../errors.js'
import { registerMapProblem } from './modbus/register-map.js'

const validateProfile = compile(DeviceProfile)

export type ProfileMap = ReadonlyMap<string, DeviceProfile>

export function parseProfile(text: string, source: string): DeviceProfile {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw new FirewatchError('FW_ERR_PROFILE', `${source}: not valid YAML: ${(err as Error).message}`)
  }
  if (!validateProfile(doc)) {
    throw new FirewatchError('FW_ERR_PROFILE', `${source}: ${describeErrors(validateProfile.errors)}`)
  }
  for (const [name, m] of Object.entries(doc.metrics)) {
    if (m.min >= m.max) {
      throw new FirewatchError('FW_ERR_PROFILE', `${source}: /metrics/${name} min must be below max`)
    }
  }
  const problem = registerMapProblem(doc)
  if (problem) throw new FirewatchError('FW_ERR_PROFILE', `${source}: ${problem}`)
  return doc
}

export function loadProfiles(dir: string): ProfileMap {
  const profiles = new Map<string, DeviceProfile>()
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
  } catch (err) {
    throw new FirewatchError('FW_ERR_PROFILE', `cannot read device profiles from ${dir}: ${(err as Error).message}`)
  }
  for (const file of files.sort()) {
    const profile = parseProfile(readFileSync(path.join(dir, file), 'utf8'), file)
    if (profiles.has(profile.name)) {
      throw new FirewatchError('FW_ERR_PROFILE', `${file}: profile ${profile.name} is defined twice`)
    }
    profiles.set(profile.name, profile)
  }
  if (profiles.size === 0) throw new FirewatchError('FW_ERR_PROFILE', `no device profiles in ${dir}`)
  return profiles
}
