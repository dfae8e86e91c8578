import { Type, type Static, type TSchema, type TUnsafe } from 'typebox'

/** Every error this API answers with: `{statusCode, error, message}` plus `code` where one applies. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status code, repeated' }),
  error: Type.String({ description: 'The HTTP status text' }),
  message: Type.String({ description: 'What went wrong, for a developer to read' }),
  code: Type.Optional(Type.String({ description: 'A stable machine-readable code where one applies, e.g. INVALID_ACCESS_TOKEN, STORE_UNAVAILABLE' })),
}, { $id: 'Error', description: 'Every error response' })
export type ErrorResponse = Static<typeof ErrorResponse>

/**
 * A reference to a schema registered once (plugins/schemas.ts) under its `$id`: OpenAPI shows it
 * as a named component, and handlers keep the static type of the schema it points to.
 */
export function ref<T extends TSchema> (schema: T, options: { description?: string, headers?: Record<string, object> } = {}): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: id, ...options })
}

/** What each error status means, unless a route says more precisely. */
const ERROR_MEANINGS: Record<number, string> = {
  400: 'The request is malformed: see `message`',
  401: 'No valid access token (see the `WWW-Authenticate` header)',
  403: 'The access token lacks the required role',
  413: 'The body is larger than 16 KiB',
  415: 'The body is not JSON',
  429: 'Too many requests from this client (logins: for this username): retry after `Retry-After` seconds',
  503: 'The token store is unavailable; retry after `Retry-After` seconds. Nothing was let through.',
}

const RETRY_AFTER = { 'retry-after': { type: 'integer', description: 'Seconds to wait before retrying' } }
/** Headers that come with an error status, documented with it. */
const ERROR_HEADERS: Record<number, Record<string, object>> = {
  429: {
    ...RETRY_AFTER,
    'x-ratelimit-limit': { type: 'integer', description: 'Requests allowed per minute' },
    'x-ratelimit-remaining': { type: 'integer', description: 'Requests left in this minute' },
    'x-ratelimit-reset': { type: 'integer', description: 'Seconds until the count starts over' },
  },
  503: RETRY_AFTER,
}

/** Error responses a route declares: status → meaning (or `true` for the usual one). */
export function errorResponses (meanings: Record<number, string | true>) {
  return Object.fromEntries(Object.entries(meanings).map(([code, meaning]) =>
    [code, ref(ErrorResponse, {
      description: meaning === true ? ERROR_MEANINGS[Number(code)] ?? 'Error' : meaning,
      ...(ERROR_HEADERS[Number(code)] === undefined ? {} : { headers: ERROR_HEADERS[Number(code)] }),
    })]))
}

/** An empty 204 answer. */
export const noContent = (description: string) => Type.Null({ description })
