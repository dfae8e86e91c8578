import { createHash } from 'node:crypto'
import t from 'tap'
import { KeyRing, headerKeyId, hmacKeyId } from '../src/tokens/key-ring.js'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile } from './helpers/http.js'
import { ACCESS_TOKEN_HEADER, claimsOf, forgeJwt } from './helpers/tokens.js'

// Signing keys named by `kid` and rotated without signing anyone out (HS256: JWT_PREVIOUS_SECRETS).

const NEXT_SECRET = 'the-next-secret-that-is-at-least-32-bytes!'

t.test('a key\'s kid is its RFC 7638 thumbprint', async (t) => {
  // RFC 7638 §3: the members k and kty, in that order, without whitespace, hashed with SHA-256.
  const secret = Buffer.from(TEST_SECRET)
  const expected = createHash('sha256').update(`{"k":"${secret.toString('base64url')}","kty":"oct"}`).digest('base64url')
  t.equal(hmacKeyId(secret), expected)
  t.not(hmacKeyId(Buffer.from(NEXT_SECRET)), expected, 'another key, another kid')
  t.equal(headerKeyId(forgeJwt({ ...ACCESS_TOKEN_HEADER, kid: 'abc' }, {})), 'abc')
  t.equal(headerKeyId(forgeJwt(ACCESS_TOKEN_HEADER, {})), undefined, 'no kid')
  t.equal(headerKeyId('%%%.x.y'), undefined, 'an unreadable header')
  const ring = new KeyRing(secret, [Buffer.from(NEXT_SECRET)])
  t.same(ring.keys.map(key => key.kid), [hmacKeyId(secret), hmacKeyId(Buffer.from(NEXT_SECRET))])
})

t.test('rotating the HMAC secret signs no one out: tokens of the previous secret verify by their kid until they expire', async (t) => {
  // Before: signing with TEST_SECRET.
  const before = await buildTestApp(t, 'redis')
  const issuedBefore = await loginTokens(before.app, USERS.alice)
  // After: signing with the next secret, the old one kept for verification only. Same Redis, same prefix.
  const after = await buildTestApp(t, 'redis', { JWT_SECRET: NEXT_SECRET, JWT_PREVIOUS_SECRETS: TEST_SECRET, REDIS_KEY_PREFIX: before.config.redisKeyPrefix })
  t.equal((await profile(after.app, bearer(issuedBefore.access_token))).statusCode, 200, 'a token of the previous secret still verifies')
  const issuedAfter = await loginTokens(after.app, USERS.alice)
  t.equal(JSON.parse(Buffer.from(issuedAfter.access_token.split('.')[0] ?? '', 'base64url').toString()).kid, hmacKeyId(Buffer.from(NEXT_SECRET)), 'new tokens name the new key')
  t.equal((await profile(before.app, bearer(issuedAfter.access_token))).statusCode, 401, 'an instance without the new key refuses them (publish the next key everywhere first)')

  // Retired: only the new secret.
  const retired = await buildTestApp(t, 'redis', { JWT_SECRET: NEXT_SECRET, REDIS_KEY_PREFIX: before.config.redisKeyPrefix })
  t.equal((await profile(retired.app, bearer(issuedBefore.access_token))).statusCode, 401, 'once the old key is retired, its tokens are refused')
  t.equal((await profile(retired.app, bearer(issuedAfter.access_token))).statusCode, 200)
})

t.test('the key is chosen by kid and its algorithm pinned: a token cannot pick another key', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { JWT_PREVIOUS_SECRETS: NEXT_SECRET })
  const real = await loginTokens(app, USERS.alice)
  const claims = claimsOf(real.access_token)
  const currentKid = hmacKeyId(Buffer.from(TEST_SECRET))
  const previousKid = hmacKeyId(Buffer.from(NEXT_SECRET))
  const cases: Array<[string, string, number]> = [
    ['signed with the previous key, naming it', forgeJwt({ ...ACCESS_TOKEN_HEADER, kid: previousKid }, claims, NEXT_SECRET), 200],
    ['no kid, signed with the signing key (issued before kids)', forgeJwt(ACCESS_TOKEN_HEADER, claims, TEST_SECRET), 200],
    ['no kid, signed with the previous key', forgeJwt(ACCESS_TOKEN_HEADER, claims, NEXT_SECRET), 401],
    ['naming the previous key, signed with the current one', forgeJwt({ ...ACCESS_TOKEN_HEADER, kid: previousKid }, claims, TEST_SECRET), 401],
    ['naming a key we do not hold', forgeJwt({ ...ACCESS_TOKEN_HEADER, kid: 'not-ours' }, claims, TEST_SECRET), 401],
    ['naming the current key with another algorithm', forgeJwt({ alg: 'HS512', typ: 'at+jwt', kid: currentKid }, claims, TEST_SECRET, 'sha512'), 401],
  ]
  for (const [name, token, status] of cases) {
    const answer = await profile(app, bearer(token))
    t.equal(answer.statusCode, status, name)
    if (status === 401) t.equal(answer.json().code, 'INVALID_ACCESS_TOKEN', `${name}: invalid, not expired`)
  }
})

t.test('JWT_PREVIOUS_SECRETS: each at least 32 bytes', async (t) => {
  const { loadConfig } = await import('../src/config.js')
  t.throws(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PREVIOUS_SECRETS: `${NEXT_SECRET},short` }), /JWT_PREVIOUS_SECRETS: each secret must be at least 32 bytes/)
  t.same(loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PREVIOUS_SECRETS: ` ${NEXT_SECRET} , ` }).jwt.previousSecrets, [Buffer.from(NEXT_SECRET)], 'spaces and empty entries ignored')
})
