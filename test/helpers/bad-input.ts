import { createHmac } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { USERS, buildTestApp, type StoreKind } from './app.js'
import { loginTokens } from './http.js'

/** Shared by the bad-input test files: the cases' shape and the checks every answer must pass. */
/** More than the 16 KiB body limit. */
export const OVERSIZED = 'x'.repeat(17 * 1024)
export const JSON_TYPE = { 'content-type': 'application/json' }
const MULTIPART_BOUNDARY = 'bad-input-boundary'

/** A multipart/form-data body with the fields as parts. */
export function multipart (fields: Record<string, string>): { headers: Record<string, string>, payload: string } {
  const parts = Object.entries(fields).map(([name, value]) =>
    `--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
  return {
    headers: { 'content-type': `multipart/form-data; boundary=${MULTIPART_BOUNDARY}` },
    payload: `${parts.join('')}--${MULTIPART_BOUNDARY}--\r\n`,
  }
}

/**
 * The same string with its next-to-last character changed: same shape, wrong value. Not the last
 * character: in base64url its low bits can be padding, so changing it may decode to the same bytes.
 */
export function charChanged (value: string): string {
  return value.slice(0, -2) + (value.at(-2) === 'A' ? 'B' : 'A') + value.slice(-1)
}

/** An HS256 JWT with our header, signed with `key`: well-formed, but not ours unless the key is. */
export function signJwt (claims: object, key: string): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const unsigned = `${encode({ alg: 'HS256', typ: 'at+jwt' })}.${encode(claims)}`
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`
}

export function decodePayload (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString())
}

export interface Case {
  name: string
  request: InjectOptions
  /** the status expected; a list where more than one answer is acceptable */
  status: number | readonly number[]
  /** a pattern the message must match */
  message?: RegExp
}

/**
 * The response is a client error with the contract's error body: JSON, exactly
 * `{statusCode, error, message}` (and optionally `code`), nothing that looks like a stack trace.
 */
export function assertClientError (t: Test, name: string, response: LightMyRequestResponse, status: number | readonly number[], message?: RegExp): void {
  const allowed = typeof status === 'number' ? [status] : status
  t.ok(allowed.includes(response.statusCode), `${name}: status ${response.statusCode}, expected ${allowed.join(' or ')}`)
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${name}: a 4xx`)
  t.match(response.headers['content-type'], /^application\/json(;|$)/, `${name}: content-type application/json`)
  t.notOk(response.body.includes('    at '), `${name}: no stack trace in the body`)
  t.notOk(response.body.includes('Error:'), `${name}: no 'Error:' in the body`)

  let body: unknown
  try {
    body = JSON.parse(response.body)
  } catch {
    t.fail(`${name}: the body is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`)
    return
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    t.fail(`${name}: the body is not a JSON object: ${response.body.slice(0, 200)}`)
    return
  }
  const fields = body as Record<string, unknown>
  const keys = Object.keys(fields).sort()
  const expectedKeys = 'code' in fields ? ['code', 'error', 'message', 'statusCode'] : ['error', 'message', 'statusCode']
  t.same(keys, expectedKeys, `${name}: exactly statusCode, error, message (and code)`)
  t.equal(fields.statusCode, response.statusCode, `${name}: body statusCode is the status`)
  t.equal(fields.error, STATUS_CODES[response.statusCode], `${name}: error is the status text`)
  t.ok(typeof fields.message === 'string' && fields.message.length > 0, `${name}: a message`)
  if ('code' in fields) t.ok(typeof fields.code === 'string' && fields.code.length > 0, `${name}: code is a string`)
  if (message !== undefined) t.match(fields.message, message, `${name}: message ${message}`)
}

export async function check (t: Test, app: FastifyInstance, c: Case): Promise<LightMyRequestResponse> {
  const response = await app.inject(c.request)
  assertClientError(t, c.name, response, c.status, c.message)
  return response
}

/** A JSON body as a raw string, sent as application/json. */
export const rawJson = (url: string, payload: string): InjectOptions => ({ method: 'POST', url, headers: JSON_TYPE, payload })

/** The app under test and a live session of alice's, which no bad input may disturb. */
export async function badInputApp (t: Test, store: StoreKind) {
  // Generous limits: dozens of bad requests from one address are what is tested here, not limiting.
  const { app } = await buildTestApp(t, store, { RATE_LIMIT_LOGIN_MAX: '1000000', RATE_LIMIT_REFRESH_MAX: '1000000', RATE_LIMIT_MAX: '1000000' })
  const alice = USERS.alice
  const tokens = await loginTokens(app, alice)
  return { app, alice, access: tokens.access_token, refreshToken: tokens.refresh_token }
}
