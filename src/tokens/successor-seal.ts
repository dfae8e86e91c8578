import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Within the refresh grace window, a just-spent refresh token presented again is answered with the
 * successor it was rotated to. The store keeps that successor sealed under a key derived from the
 * spent token itself, which the store never sees (it holds only the token's SHA-256): a dump of the
 * store alone yields no usable token, while whoever presents the spent token can open it.
 *
 * AES-256-GCM; the key is HKDF-SHA256 of the whole spent token (a 256-bit secret inside), so it has
 * nothing in common with the SHA-256 the store keeps. Sealed form: base64url(iv ‖ ciphertext ‖ tag).
 */

const SALT = Buffer.from('token-auth-api/refresh-successor/v1')
const IV_BYTES = 12
const TAG_BYTES = 16

function keyFor (spentToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', spentToken, SALT, 'aes-256-gcm key', 32))
}

export function sealSuccessor (spentToken: string, successor: string): string {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', keyFor(spentToken), iv)
  const sealed = Buffer.concat([iv, cipher.update(successor, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return sealed.toString('base64url')
}

/** The successor, or null when `sealed` was not sealed for this spent token (or was altered). */
export function openSuccessor (spentToken: string, sealed: string): string | null {
  const bytes = Buffer.from(sealed, 'base64url')
  if (bytes.length < IV_BYTES + TAG_BYTES) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyFor(spentToken), bytes.subarray(0, IV_BYTES))
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
