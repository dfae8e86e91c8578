import { STATUS_CODES } from 'node:http'
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
export function ref<T extends TSchema> (schema: T, options: { description?: string, headers?: Record<string, object>, examples?: unknown[] } = {}): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>({ $ref: id, ...options })
}

/** What each error status means, unless a route says more precisely. */
const ERROR_MEANINGS: Record<number, string> = {
  400: 'The request is malformed: see `message`',
  401: 'No valid access token (see the `WWW-Authenticate` header). `ACCESS_TOKEN_EXPIRED`: the token is valid but expired — refresh and retry. `INVALID_ACCESS_TOKEN`: missing, invalid or revoked — sign in again (a challenge without `error` means no token came: a browser drops the access cookie when it expires, so a cookie client refreshes once first). `DUPLICATE_TOKEN_COOKIE`: a token cookie was sent twice (another site of the domain may have planted one); nothing was used',
  403: 'The access token lacks the required role',
  413: 'The body is larger than 16 KiB',
  415: 'The body is not JSON',
  429: 'Too many requests from this client (logins: for this username): retry after `Retry-After` seconds',
  503: 'The token store is unavailable (or this instance is shutting down), or the access token is a trusted provider\'s whose keys cannot be fetched (`PROVIDER_UNAVAILABLE`); retry after `Retry-After` seconds. Nothing was let through.',
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
/** The challenge a protected route's 401 and 403 carry (RFC 6750); other routes' 401s have none. */
const CHALLENGE_HEADERS: Record<number, Record<string, object>> = {
  401: {
    'www-authenticate': {
      type: 'string',
      description: 'RFC 6750 challenge: `Bearer` when no token came; `Bearer error="invalid_token", error_description="…"` otherwise, ' +
        'with "The access token expired" exactly when `code` is ACCESS_TOKEN_EXPIRED',
      examples: ['Bearer error="invalid_token", error_description="The access token expired"', 'Bearer'],
    },
  },
  403: { 'www-authenticate': { type: 'string', description: 'RFC 6750 challenge: `Bearer error="insufficient_scope", …`' } },
}

/** A body as the API sends it for a status: the example of that response in the document. */
export type ErrorExample = Pick<ErrorResponse, 'message' | 'code'>
/** What each status usually says, as the API really words it (test/openapi.test.ts checks the codes). */
const ERROR_EXAMPLES: Record<number, ErrorExample | ErrorExample[]> = {
  400: { message: 'body must be object', code: 'FST_ERR_VALIDATION' },
  401: [{ message: 'Authentication required', code: 'INVALID_ACCESS_TOKEN' }, { message: 'The access token expired', code: 'ACCESS_TOKEN_EXPIRED' }],
  403: { message: "This resource requires the role 'admin'", code: 'INSUFFICIENT_ROLE' },
  413: { message: 'Request body is too large', code: 'FST_ERR_CTP_BODY_TOO_LARGE' },
  415: { message: 'Unsupported Media Type', code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' },
  429: { message: 'Too many requests; retry in 1 minute', code: 'RATE_LIMITED' },
  503: { message: 'The token store is unavailable; try again shortly', code: 'STORE_UNAVAILABLE' },
}

/** A route's own wording of an error status: its meaning, and the body it answers with when it differs. */
export interface ErrorMeaning { description: string, example?: ErrorExample }

/**
 * Error responses a route declares: status → meaning (`true` for the usual one), each with an
 * example body of its own status (without one, generated examples would all say 400).
 */
export function errorResponses (meanings: Record<number, string | true | ErrorMeaning>) {
  return Object.fromEntries(Object.entries(meanings).map(([code, meaning]) => {
    const status = Number(code)
    const own = typeof meaning === 'object' ? meaning : undefined
    const bodies = [own?.example ?? ERROR_EXAMPLES[status] ?? []].flat()
    const headers = { ...ERROR_HEADERS[status], ...(meaning === true ? CHALLENGE_HEADERS[status] : {}) }
    return [code, ref(ErrorResponse, {
      description: own?.description ?? (meaning === true ? ERROR_MEANINGS[status] ?? 'Error' : String(meaning)),
      ...(Object.keys(headers).length === 0 ? {} : { headers }),
      examples: bodies.map(body => ({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', ...body })),
    })]
  }))
}

/** An empty 204 answer. */
export const noContent = (description: string) => Type.Null({ description })
