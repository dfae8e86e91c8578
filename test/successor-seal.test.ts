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
