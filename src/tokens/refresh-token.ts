import { ID_PATTERN, USER_ID_PATTERN, randomSecret, sha256 } from '../ids.js'

/**
 * A refresh token is `<userId>.<sessionId>.<secret>`: a non-secret locator (so its record is found
 * under the user's hash tag) and 256 random bits. Only the SHA-256 of the whole token is stored.
 */
export interface ParsedRefreshToken {
  userId: string
  sessionId: string
  hash: string
}

const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/

export function newRefreshToken (userId: string, sessionId: string): { token: string, hash: string } {
  const token = `${userId}.${sessionId}.${randomSecret()}`
  return { token, hash: sha256(token) }
}

/** null for anything that is not shaped like a token this service issued. */
export function parseRefreshToken (token: string): ParsedRefreshToken | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const [userId, sessionId, secret] = parts as [string, string, string]
  if (!USER_ID_PATTERN.test(userId) || !ID_PATTERN.test(sessionId) || !SECRET_PATTERN.test(secret)) return null
  return { userId, sessionId, hash: sha256(token) }
}
