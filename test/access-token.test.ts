import { createHmac } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config.js'
import { InvalidAccessTokenError } from '../src/errors.js'
import { accessTokenCodec, accessTokenJwtOptions } from '../src/tokens/access-token.js'
import { TEST_SECRET } from './helpers/app.js'

const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, ACCESS_TOKEN_TTL: '60' })
const options = accessTokenJwtOptions(config)
const codec = accessTokenCodec({
  sign: createSigner({ ...options.sign, key: options.secret }),
  verify: createVerifier({ ...options.verify, key: options.secret }),
})
const payload = { sub: 'user-1', roles: ['user'], sid: 'session-1', jti: 'token-1' }

/** Hand-made JWT, to forge what a signer with our options never would. */
function forge (header: object, claims: object, key: string | Buffer = TEST_SECRET, algorithm = 'sha256'): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const unsigned = `${encode(header)}.${encode(claims)}`
  return `${unsigned}.${createHmac(algorithm, key).update(unsigned).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const goodHeader = { alg: 'HS256', typ: 'at+jwt' }
const goodClaims = () => ({ ...payload, iat: now(), exp: now() + 60, iss: config.jwt.issuer, aud: config.jwt.audience })

function rejects (t: Test, token: string, message: string, why: string) {
  t.throws(() => codec.verify(token), new InvalidAccessTokenError(message), why)
}

t.test('a signed token round-trips with exactly the contract claims', async (t) => {
  const claims = codec.verify(codec.sign(payload))
  t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub'])
  t.match(claims, { ...payload, iss: config.jwt.issuer, aud: config.jwt.audience })
  t.equal(claims.exp - claims.iat, 60)
  t.ok(codec.verify(forge(goodHeader, goodClaims())), 'a well-formed hand-made token verifies (the forger below is sound)')
})

t.test('verification pins algorithm, issuer, audience, type, expiry and not-before', async (t) => {
  const invalid = 'The access token is invalid'
  rejects(t, forge({ alg: 'none', typ: 'at+jwt' }, goodClaims()).split('.').slice(0, 2).join('.') + '.', invalid, 'alg none')
  rejects(t, forge({ alg: 'HS512', typ: 'at+jwt' }, goodClaims(), TEST_SECRET, 'sha512'), invalid, 'another HMAC algorithm')
  rejects(t, forge({ alg: 'HS256', typ: 'JWT' }, goodClaims()), invalid, 'typ JWT (an ID token, say)')
  rejects(t, forge({ alg: 'HS256' }, goodClaims()), invalid, 'no typ')
  rejects(t, forge(goodHeader, { ...goodClaims(), iss: 'someone-else' }), invalid, 'foreign issuer')
  rejects(t, forge(goodHeader, { ...goodClaims(), aud: 'another-api' }), invalid, 'foreign audience')
  rejects(t, forge(goodHeader, goodClaims(), 'another-secret-that-is-32-bytes-long!!'), invalid, 'another key')
  rejects(t, forge(goodHeader, { ...goodClaims(), nbf: now() + 60 }), invalid, 'not yet valid')
  rejects(t, forge(goodHeader, { ...goodClaims(), iat: now() - 120, exp: now() - 60 }), 'The access token has expired', 'expired')
  for (const claim of ['sub', 'sid', 'jti', 'exp', 'iss', 'aud']) {
    const claims: Record<string, unknown> = goodClaims()
    delete claims[claim]
    rejects(t, forge(goodHeader, claims), invalid, `missing ${claim}`)
  }
  rejects(t, forge(goodHeader, { ...goodClaims(), roles: 'admin' }), invalid, 'roles not an array')
  rejects(t, forge(goodHeader, { ...goodClaims(), roles: [1] }), invalid, 'roles not strings')
  rejects(t, forge(goodHeader, { ...goodClaims(), sid: 42 }), invalid, 'sid not a string')
  rejects(t, 'x'.repeat(5000), invalid, 'absurdly long')
  rejects(t, '', invalid, 'empty')
})
