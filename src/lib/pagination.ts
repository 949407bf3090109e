import Type, { type TSchema } from 'typebox'
import type { PageRequest } from '../db/keyset.js'
import { errors } from '../errors.js'

export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'page size' }),
  cursor: Type.Optional(Type.String({ maxLength: 64, description: 'opaque cursor from the previous page' }))
}

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) })

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Cursors wrap the last row's id: ids are UUIDv7, so id order is creation order. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  const id = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!UUID.test(id)) throw errors.validation('cursor is invalid', [{ path: '/querystring/cursor', message: 'is not a cursor from this API' }])
  return id
}

/** The page a `PageQuery` asks for: its size and the id its cursor names. */
export const pageRequest = (query: { limit: number; cursor?: string }): PageRequest => ({ limit: query.limit, after: decodeCursor(query.cursor) })

/** Rows were fetched with limit + 1: the extra row only says that another page exists. */
export function toPage<R extends { id: string }, T>(rows: R[], limit: number, map: (row: R) => T) {
  const more = rows.length > limit
  const page = more ? rows.slice(0, limit) : rows
  const last = page.at(-1)
  return {
    items: page.map(map),
    nextCursor: more && last ? Buffer.from(last.id, 'utf8').toString('base64url') : null
  }
}
