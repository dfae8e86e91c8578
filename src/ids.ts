import { createHash, randomBytes } from 'node:crypto'

/** 128 bits from the CSPRNG, base64url: session ids and token ids (`jti`). */
export function randomId (): string {
  return randomBytes(16).toString('base64url')
}

/** 256 bits from the CSPRNG, base64url: the secret part of a refresh token. */
export function randomSecret (): string {
  return randomBytes(32).toString('base64url')
}

export function sha256 (value: string): string {
  return createHash('sha256').update(value).digest('base64url')
}

/**
 * A user's id is derived from the username: stable, opaque, and computable at login without an
 * index key outside the user's Redis hash tag (docs/decisions.md).
 */
export function userIdFor (username: string): string {
  return sha256(`user:${username}`).slice(0, 22)
}

/** The shape of every id made above: 22 base64url characters. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/

/**
 * A user's id here for an identity at an OpenID provider: stable for (issuer, sub), the same sub at
 * another issuer another id, and never a local user's (those are 22 characters, these 24).
 */
export function externalUserId (issuer: string, subject: string): string {
  return `x-${sha256(`oidc\n${issuer}\n${subject}`).slice(0, 22)}`
}

/** The shape of a user id: a local user's (userIdFor) or an external identity's (externalUserId). */
export const USER_ID_PATTERN = /^(?:x-)?[A-Za-z0-9_-]{22}$/
