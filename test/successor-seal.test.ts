import { createDecipheriv, hkdfSync } from 'node:crypto'
import t from 'tap'
import { sha256 } from '../src/ids.js'
import { newRefreshToken } from '../src/tokens/refresh-token.js'
import { openSuccessor, sealSuccessor } from '../src/tokens/successor-seal.js'

t.test('a successor sealed under a spent token opens with that token only', async (t) => {
  const spent = newRefreshToken('u'.repeat(22), 's'.repeat(22)).token
  const successor = newRefreshToken('u'.repeat(22), 's'.repeat(22)).token
  const sealed = sealSuccessor(spent, successor)
  t.equal(openSuccessor(spent, sealed), successor, 'the spent token opens it')
  t.not(sealSuccessor(spent, successor), sealed, 'a fresh IV every time')
  t.notOk(sealed.includes(successor.split('.')[2] ?? successor), 'the secret is not in the sealed form')
  t.equal(openSuccessor(successor, sealed), null, 'another token does not')
  t.equal(openSuccessor(sha256(spent), sealed), null, 'nor the SHA-256 the store keeps of the spent token')
  const bytes = Buffer.from(sealed, 'base64url')
  bytes[20] = (bytes[20] ?? 0) ^ 1
  t.equal(openSuccessor(spent, bytes.toString('base64url')), null, 'an altered ciphertext fails its tag')
  t.equal(openSuccessor(spent, 'c2hvcnQ'), null, 'a truncated one too')
  t.equal(openSuccessor(spent, ''), null)
})

t.test('the key is HKDF-SHA256 of the spent token itself, never of the SHA-256 the store keeps', async (t) => {
  const spent = newRefreshToken('u'.repeat(22), 's'.repeat(22)).token
  const successor = newRefreshToken('u'.repeat(22), 's'.repeat(22)).token
  const bytes = Buffer.from(sealSuccessor(spent, successor), 'base64url')
  const open = (ikm: string) => {
    const key = Buffer.from(hkdfSync('sha256', ikm, 'token-auth-api/refresh-successor/v1', 'aes-256-gcm key', 32))
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString()
  }
  t.equal(open(spent), successor, 'derived from the whole spent token, as documented')
  t.throws(() => open(sha256(spent)), 'the same derivation from what Redis holds fails its tag')
})
