import { createHash, type KeyObject } from 'node:crypto'
import { publicHalf, publicJwk, type SigningAlgorithm } from './signing-key.js'

/** A key access tokens are verified with, named by its RFC 7638 thumbprint, pinned to one algorithm. */
export interface VerificationKey {
  kid: string
  algorithm: SigningAlgorithm
  /** the HMAC secret, or the public key in PEM */
  key: Buffer | string
  /** an asymmetric key's public JWK, as published at /.well-known/jwks.json */
  jwk?: Record<string, string>
}

/** RFC 7638 §3.2: the members each key type's thumbprint covers, in lexicographic order. */
const THUMBPRINT_MEMBERS: Record<string, string[]> = { OKP: ['crv', 'kty', 'x'], EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'] }

/** RFC 7638 JWK thumbprint of a public JWK (OKP, EC or RSA). */
export function jwkThumbprint (jwk: Record<string, string>): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''] ?? []
  return createHash('sha256').update(JSON.stringify(Object.fromEntries(members.map(name => [name, jwk[name]])))).digest('base64url')
}

/** The verification key of an asymmetric key (private or public): its public half, named by its thumbprint. */
function publicKeyOf (algorithm: SigningAlgorithm, key: KeyObject): VerificationKey {
  const jwk = publicJwk(key)
  const kid = jwkThumbprint(jwk)
  return { kid, algorithm, key: publicHalf(key).export({ format: 'pem', type: 'spki' }) as string, jwk: { ...jwk, kid, alg: algorithm, use: 'sig' } }
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

  constructor (options: { algorithm: SigningAlgorithm, secret: Buffer, privateKey?: KeyObject | undefined, previousSecrets?: Buffer[], verifyKeys?: Array<{ algorithm: SigningAlgorithm, key: KeyObject }> }) {
    this.signing = options.privateKey === undefined
      ? { kid: hmacKeyId(options.secret), algorithm: 'HS256', key: options.secret }
      : publicKeyOf(options.algorithm, options.privateKey)
    const previous = (options.previousSecrets ?? []).map(key => ({ kid: hmacKeyId(key), algorithm: 'HS256' as const, key }))
    const others = (options.verifyKeys ?? []).map(({ algorithm, key }) => publicKeyOf(algorithm, key))
    // The signing key first; a verification key that is the signing key too is listed once.
    this.#byKid = new Map([this.signing, ...others.filter(k => k.kid !== this.signing.kid), ...previous].map(k => [k.kid, k]))
  }

  /** The public keys to publish (asymmetric modes); none in HS256 mode. */
  get jwks (): Array<Record<string, string>> {
    return this.keys.flatMap(key => key.jwk === undefined ? [] : [key.jwk])
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
