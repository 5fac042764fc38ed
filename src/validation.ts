/** One Ajv instance for every schema in schemas/: device payloads, profiles, API bodies (fastify has its own). */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { TSchema, Static } from '@sinclair/typebox'

// ajv-formats is CommonJS; its default export arrives wrapped under NodeNext resolution.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

export const ajv = addFormats(new Ajv({ allErrors: false, strict: false }), ['date-time', 'uri'])

export type Validator<T extends TSchema> = ValidateFunction<Static<T>>

export function compile<T extends TSchema>(schema: T): Validator<T> {
  return ajv.compile<Static<T>>(schema)
}

/** "/values/pressure_mpa must be number" — the first error, with the path of the offending field. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0]
  if (!e) return 'invalid'
  const where = e.instancePath || '(root)'
  if (e.keyword === 'additionalProperties') {
    return `${where} has unknown field ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`
  }
  return `${where} ${e.message ?? 'is invalid'}`
}
