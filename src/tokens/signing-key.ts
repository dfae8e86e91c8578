import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError } from '../config-error.js'

export type SigningAlgorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256'
export type AsymmetricAlgorithm = Exclude<SigningAlgorithm, 'HS256'>

/** RSA keys shorter than this are refused (NIST SP 800-57: 2048 bits until 2030). */
export const RSA_MIN_BITS = 2048

/** What each algorithm's key must be: EdDSA is Ed25519, ES256 P-256, RS256 RSA of RSA_MIN_BITS or more. */
function keyFits (algorithm: AsymmetricAlgorithm, key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {}
  if (algorithm === 'EdDSA') return key.asymmetricKeyType === 'ed25519' ? undefined : 'an Ed25519 key'
  if (algorithm === 'ES256') return key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1' ? undefined : 'a P-256 (prime256v1) EC key'
  if (key.asymmetricKeyType !== 'rsa') return `an RSA key of at least ${RSA_MIN_BITS} bits`
  return (details.modulusLength ?? 0) >= RSA_MIN_BITS ? undefined : `an RSA key of at least ${RSA_MIN_BITS} bits (this one has ${details.modulusLength ?? 0})`
}

/**
 * The private key JWT_PRIVATE_KEY_FILE holds (PEM, PKCS#8), checked against JWT_ALGORITHM; refuses,
 * naming the variable, a missing or unreadable file, a public key, and a key of the wrong kind or
 * strength. Never says anything of the key itself.
 */
export function loadPrivateKey (algorithm: AsymmetricAlgorithm, file: string | undefined): KeyObject {
  if (file === undefined) throw new ConfigError(`JWT_PRIVATE_KEY_FILE is required with JWT_ALGORITHM=${algorithm}`)
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`JWT_PRIVATE_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) throw new ConfigError('JWT_PRIVATE_KEY_FILE must hold a PKCS#8 private key in PEM ("-----BEGIN PRIVATE KEY-----")')
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    throw new ConfigError('JWT_PRIVATE_KEY_FILE does not hold a readable PKCS#8 private key')
  }
  const wanted = keyFits(algorithm, key)
  if (wanted !== undefined) throw new ConfigError(`JWT_PRIVATE_KEY_FILE: JWT_ALGORITHM=${algorithm} needs ${wanted}`)
  return key
}

/** The public half of a key, as a JWK of its public members only. */
export function publicJwk (key: KeyObject): Record<string, string> {
  return publicHalf(key).export({ format: 'jwk' }) as Record<string, string>
}

/** A key's public half (a public key is its own). */
export function publicHalf (key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key)
}

/** The algorithm a public key is used with: EdDSA for Ed25519, ES256 for P-256, RS256 for RSA. */
function algorithmOf (key: KeyObject): AsymmetricAlgorithm | undefined {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'ES256'
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= RSA_MIN_BITS) return 'RS256'
  return undefined
}

/**
 * The extra public keys of JWT_VERIFY_KEYS_FILE — previous or next signing keys — as a PEM bundle
 * (`-----BEGIN PUBLIC KEY-----` blocks) or a JWKS (`{"keys": [...]}`). Each must be an Ed25519, P-256
 * or RSA (2048+) public key; a private member, anything unreadable or of another kind is refused.
 */
export function loadVerifyKeys (file: string | undefined): Array<{ algorithm: AsymmetricAlgorithm, key: KeyObject }> {
  if (file === undefined) return []
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`JWT_VERIFY_KEYS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let keys: KeyObject[]
  try {
    if (text.trimStart().startsWith('{')) {
      const jwks = JSON.parse(text) as { keys?: unknown }
      if (!Array.isArray(jwks.keys)) throw new Error('no "keys" array')
      keys = jwks.keys.map((jwk: unknown) => {
        if (typeof jwk !== 'object' || jwk === null || 'd' in jwk) throw new Error('a JWK that is not a public key')
        return createPublicKey({ key: jwk as never, format: 'jwk' })
      })
    } else {
      if (text.includes('PRIVATE KEY')) throw new Error('a private key')
      keys = [...text.matchAll(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)].map(([pem]) => createPublicKey({ key: pem, format: 'pem' }))
    }
  } catch (err) {
    throw new ConfigError(`JWT_VERIFY_KEYS_FILE must hold public keys only, as PEM (SPKI) or a JWKS (${(err as Error).message})`)
  }
  if (keys.length === 0) throw new ConfigError('JWT_VERIFY_KEYS_FILE holds no public key')
  return keys.map((key) => {
    const algorithm = algorithmOf(key)
    if (algorithm === undefined) throw new ConfigError(`JWT_VERIFY_KEYS_FILE: every key must be Ed25519, P-256 or RSA of at least ${RSA_MIN_BITS} bits`)
    return { algorithm, key }
  })
}
