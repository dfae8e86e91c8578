import { createHash } from 'node:crypto'

/** A key access tokens are verified with, named by its RFC 7638 thumbprint, pinned to one algorithm. */
export interface VerificationKey {
  kid: string
  algorithm: 'HS256'
  key: Buffer
}

/**
 * RFC 7638 JWK thumbprint of an HMAC secret: SHA-256 over `{"k":…,"kty":"oct"}` (members in
 * lexicographic order, no spaces), base64url. Every instance computes the same `kid` for the same
 * key, without coordination.
 */
export function hmacKeyId (secret: Buffer): string {
  const jwk = `{"k":"${secret.toString('base64url')}","kty":"oct"}`
  return createHash('sha256').update(jwk).digest('base64url')
}

/** The `kid` of a JWT's header, undefined when it has none or the header is not readable JSON. */
export function headerKeyId (token: string): string | undefined {
  const end = token.indexOf('.')
  if (end <= 0) return undefined
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, end), 'base64url').toString('utf8')) as unknown
    const kid = typeof header === 'object' && header !== null ? (header as { kid?: unknown }).kid : undefined
    return typeof kid === 'string' ? kid : undefined
  } catch {
    return undefined
  }
}

/**
 * The signing key and every key tokens verify with (it, and the previous ones being retired), by
 * `kid`. A token names its key; a token without `kid` (issued before keys had ids) is verified with
 * the signing key alone.
 */
export class KeyRing {
  readonly signing: VerificationKey
  readonly #byKid: Map<string, VerificationKey>

  constructor (signingSecret: Buffer, previousSecrets: Buffer[] = []) {
    this.signing = { kid: hmacKeyId(signingSecret), algorithm: 'HS256', key: signingSecret }
    this.#byKid = new Map([this.signing, ...previousSecrets.map(key => ({ kid: hmacKeyId(key), algorithm: 'HS256' as const, key }))].map(k => [k.kid, k]))
  }

  get keys (): VerificationKey[] {
    return [...this.#byKid.values()]
  }

  /** The key a token names, the signing key for one that names none; undefined for a key we do not hold. */
  keyFor (token: string): VerificationKey | undefined {
    const kid = headerKeyId(token)
    return kid === undefined ? this.signing : this.#byKid.get(kid)
  }
}
