import { createHmac } from 'node:crypto'
import { TEST_SECRET } from './app.js'

/** Hand-made JWTs, to forge what the service's signer never would, with the service's own key. */
export function forgeJwt (header: object, claims: object, key: string = TEST_SECRET, algorithm = 'sha256'): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const unsigned = `${encode(header)}.${encode(claims)}`
  return `${unsigned}.${createHmac(algorithm, key).update(unsigned).digest('base64url')}`
}

export const ACCESS_TOKEN_HEADER = { alg: 'HS256', typ: 'at+jwt' }

/** The claims of an access token the service issued. */
export function claimsOf (accessToken: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(accessToken.split('.')[1]), 'base64url').toString())
}

/** A copy of a real access token, signed with the service's key, that expired `agoSeconds` ago. */
export function expiredCopy (accessToken: string, lifetime: number, agoSeconds = 60): string {
  const now = Math.floor(Date.now() / 1000)
  return forgeJwt(ACCESS_TOKEN_HEADER, { ...claimsOf(accessToken), iat: now - lifetime - agoSeconds, exp: now - agoSeconds })
}
