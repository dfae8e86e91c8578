import t from 'tap'
import { AccessTokenExpiredError } from '../src/errors.js'
import { VERIFIED_TOKENS_CACHED, accessTokenCodec } from '../src/tokens/access-token.js'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile } from './helpers/http.js'
import { ACCESS_TOKEN_HEADER as GOOD_HEADER, forgeJwt as forge } from './helpers/tokens.js'

const now = () => Math.floor(Date.now() / 1000)

t.test('the running app pins algorithm, issuer, audience, type, lifetime, expiry and not-before', async (t) => {
  const { app, config } = await buildTestApp(t, 'memory')
  const issued = await loginTokens(app, USERS.alice)
  const real = JSON.parse(Buffer.from(String(issued.access_token.split('.')[1]), 'base64url').toString())
  const claims = () => ({ ...real, iat: now(), exp: now() + config.accessTokenTtl })
  const invalid = 'The access token is invalid'
  const expired = () => ({ ...real, iat: now() - config.accessTokenTtl - 60, exp: now() - 60 })

  const control = await profile(app, bearer(forge(GOOD_HEADER, claims())))
  t.equal(control.statusCode, 200, 'a well-formed hand-made token passes: the forger is sound')

  const cases: Array<[string, string, string]> = [
    ['alg none', `${forge({ alg: 'none', typ: 'at+jwt' }, claims()).split('.').slice(0, 2).join('.')}.`, invalid],
    ['another HMAC algorithm (HS512)', forge({ alg: 'HS512', typ: 'at+jwt' }, claims(), TEST_SECRET, 'sha512'), invalid],
    ['typ JWT (an ID token, say)', forge({ alg: 'HS256', typ: 'JWT' }, claims()), invalid],
    ['no typ', forge({ alg: 'HS256' }, claims()), invalid],
    ['a foreign issuer', forge(GOOD_HEADER, { ...claims(), iss: 'someone-else' }), invalid],
    ['a foreign audience', forge(GOOD_HEADER, { ...claims(), aud: 'another-api' }), invalid],
    ['another key', forge(GOOD_HEADER, claims(), 'another-secret-that-is-32-bytes-long!!'), invalid],
    ['not yet valid (nbf)', forge(GOOD_HEADER, { ...claims(), nbf: now() + 60 }), invalid],
    ['expired', forge(GOOD_HEADER, expired()), 'The access token expired'],
    ['expired, from a foreign issuer', forge(GOOD_HEADER, { ...expired(), iss: 'someone-else' }), invalid],
    ['expired, for a foreign audience', forge(GOOD_HEADER, { ...expired(), aud: 'another-api' }), invalid],
    ['expired, signed with another key', forge(GOOD_HEADER, expired(), 'another-secret-that-is-32-bytes-long!!'), invalid],
    ['expired, typ JWT', forge({ alg: 'HS256', typ: 'JWT' }, expired()), invalid],
    ['expired, with a lifetime longer than ACCESS_TOKEN_TTL', forge(GOOD_HEADER, { ...expired(), iat: now() - 10 * 365 * 86_400 }), invalid],
    ['expired, roles not a list', forge(GOOD_HEADER, { ...expired(), roles: 'admin' }), invalid],
    ['a lifetime longer than ACCESS_TOKEN_TTL', forge(GOOD_HEADER, { ...claims(), exp: now() + 10 * 365 * 86_400 }), invalid],
    ['issued in the future', forge(GOOD_HEADER, { ...claims(), iat: now() + 3600, exp: now() + 3600 + 60 }), invalid],
    ['roles not a list', forge(GOOD_HEADER, { ...claims(), roles: 'admin' }), invalid],
    ['roles not strings', forge(GOOD_HEADER, { ...claims(), roles: [1] }), invalid],
    ['sid not a string', forge(GOOD_HEADER, { ...claims(), sid: 42 }), invalid],
    ['absurdly long', 'x'.repeat(5000), invalid],
  ]
  for (const claim of ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud']) {
    const without: Record<string, unknown> = claims()
    delete without[claim]
    cases.push([`missing ${claim}`, forge(GOOD_HEADER, without), invalid])
  }
  for (const [name, token, message] of cases) {
    const response = await profile(app, bearer(token))
    t.equal(response.statusCode, 401, `${name}: 401`)
    t.equal(response.json().message, message, `${name}: ${message}`)
    t.equal(response.json().code, message === invalid ? 'INVALID_ACCESS_TOKEN' : 'ACCESS_TOKEN_EXPIRED', `${name}: code`)
    t.equal(response.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${message}"`, `${name}: challenge`)
  }
})

t.test('verified tokens are remembered by their exact text, never past their expiry, and at most VERIFIED_TOKENS_CACHED of them', async (t) => {
  let verifications = 0
  const lifetime = 900
  const codec = accessTokenCodec({
    sign: () => '',
    // Any text "verifies" to claims whose expiry it names: 'exp=<epoch s>;<anything>'.
    verify: (token) => {
      verifications++
      const exp = Number(/^exp=(\d+);/.exec(token)?.[1])
      if (exp * 1000 <= Date.now()) throw Object.assign(new Error('expired'), { code: 'FAST_JWT_EXPIRED' })
      return { sub: 's', sid: 'i', jti: token, roles: [], iat: exp - lifetime, exp, iss: 'x', aud: 'y' }
    },
    verifyIgnoringExpiry: (token) => ({ sub: 's', sid: 'i', jti: token, roles: [], iat: now() - 60, exp: now() - 1, iss: 'x', aud: 'y' }),
  }, lifetime)

  const soon = `exp=${now() + 1};a`
  t.equal(codec.verify(soon).jti, soon)
  t.equal(codec.verify(soon).jti, soon)
  t.equal(verifications, 1, 'the second presentation is answered from memory')
  t.throws(() => { (codec.verify(soon) as { roles: string[] }).roles = ['admin'] }, TypeError, 'the remembered claims cannot be changed by a request')
  t.throws(() => { codec.verify(soon).roles.push('admin') }, TypeError, 'nor their roles')
  t.not(codec.verify(`${soon} `), undefined)
  t.equal(verifications, 2, 'another text, however close, is verified')
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.throws(() => codec.verify(soon), AccessTokenExpiredError, 'once its exp has passed, it is verified again, and is expired')

  const first = `exp=${now() + 600};first`
  codec.verify(first)
  for (let i = 0; i < VERIFIED_TOKENS_CACHED; i++) codec.verify(`exp=${now() + 600};${i}`)
  const before = verifications
  codec.verify(first)
  t.equal(verifications, before + 1, `after ${VERIFIED_TOKENS_CACHED} others, the oldest was forgotten`)
  codec.verify(`exp=${now() + 600};${VERIFIED_TOKENS_CACHED - 1}`)
  t.equal(verifications, before + 1, 'a recent one is still remembered')
})
