/**
 * Keyset cursors: the sort key of the last item of a page, handed to the client as an opaque string (base64url of a
 * JSON array) and given back as `?cursor=` for the next page. The next page starts strictly after that key, so
 * items added or removed elsewhere in the list never shift it (an offset would), and reading it costs one index
 * range scan however deep it is. Routes check the decoded key's shape; anything else is a 400 naming `cursor`.
 */
import { FirewatchError } from '../errors.js'

export const badCursor = (why: string) =>
  new FirewatchError('FW_ERR_VALIDATION', `querystring.cursor ${why}: pass the nextCursor of a previous page unchanged`, { statusCode: 400, field: 'cursor' })

export function encodeCursor(key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url')
}

/** The key inside a cursor; `check` tells whether it has the route's shape. */
export function decodeCursor<T extends unknown[]>(cursor: string, check: (key: unknown[]) => key is T): T {
  let key: unknown
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url')
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw badCursor('is not a cursor of this list')
  }
  if (!Array.isArray(key) || !check(key)) throw badCursor('is not a cursor of this list')
  return key
}
