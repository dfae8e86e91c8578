import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createVerifier } from 'fast-jwt'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { KeyRing, headerKeyId, hmacKeyId, jwkThumbprint } from '../src/tokens/key-ring.js'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile } from './helpers/http.js'
import { uniqueKeyPrefix } from './helpers/redis.js'
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
  const ring = new KeyRing({ algorithm: 'HS256', secret, previousSecrets: [Buffer.from(NEXT_SECRET)] })
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
  t.throws(() => loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PREVIOUS_SECRETS: `${NEXT_SECRET},short` }), /JWT_PREVIOUS_SECRETS: each secret must be at least 32 bytes/)
  t.same(loadConfig({ JWT_SECRET: TEST_SECRET, JWT_PREVIOUS_SECRETS: ` ${NEXT_SECRET} , ` }).jwt.previousSecrets, [Buffer.from(NEXT_SECRET)], 'spaces and empty entries ignored')
})

/** A PKCS#8 PEM file of a fresh key pair of `type`, and its public key. */
function keyFile (t: { teardown (fn: () => unknown): void }, type: 'ed25519' | 'ec' | 'rsa', options: object = {}): { file: string, publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'ed25519', options as never) as unknown as { privateKey: KeyObject, publicKey: KeyObject }
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'key.pem')
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }))
  return { file, publicKey }
}

const ASYMMETRIC: Array<['EdDSA' | 'ES256' | 'RS256', 'ed25519' | 'ec' | 'rsa', object]> = [
  ['EdDSA', 'ed25519', {}],
  ['ES256', 'ec', { namedCurve: 'prime256v1' }],
  ['RS256', 'rsa', { modulusLength: 2048 }],
]

for (const [algorithm, type, options] of ASYMMETRIC) {
  t.test(`JWT_ALGORITHM=${algorithm}: signed with JWT_PRIVATE_KEY_FILE, verified by anyone with the JWKS`, async (t) => {
    const { file, publicKey } = keyFile(t, type, options)
    const { app } = await buildTestApp(t, 'memory', { JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEY_FILE: file, JWT_SECRET: '' })
    const tokens = await loginTokens(app, USERS.alice)
    const header = JSON.parse(Buffer.from(tokens.access_token.split('.')[0] ?? '', 'base64url').toString()) as Record<string, string>
    const publicJwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
    t.same(header, { alg: algorithm, typ: 'at+jwt', kid: jwkThumbprint(publicJwk) })
    t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200)

    const jwks = await app.inject({ url: '/.well-known/jwks.json' })
    t.equal(jwks.statusCode, 200)
    t.equal(jwks.headers['cache-control'], 'public, max-age=300')
    const [published] = (jwks.json() as { keys: Array<Record<string, string>> }).keys
    t.same(published, { ...publicJwk, kid: header.kid, alg: algorithm, use: 'sig' }, 'the public key, with kid, alg and use')
    t.notOk(['d', 'p', 'q', 'dp', 'dq', 'qi'].some(member => member in (published ?? {})), 'never a private part')
    // A service of its own verifies our token with nothing but the published key.
    const verify = createVerifier({ key: createPublicKey({ key: published as Parameters<typeof createPublicKey>[0] & object as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string, algorithms: [algorithm] })
    t.match(verify(tokens.access_token), { sub: claimsOf(tokens.access_token).sub })

    const hmacForgery = forgeJwt({ alg: 'HS256', typ: 'at+jwt', kid: header.kid }, claimsOf(tokens.access_token), publicKey.export({ format: 'pem', type: 'spki' }) as string)
    t.equal((await profile(app, bearer(hmacForgery)).then(r => r.statusCode)), 401, 'HS256 with the public key as its secret: refused (the key\'s algorithm is pinned)')
  })
}

t.test('HS256 mode publishes no key: the JWKS is a 404', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const answer = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(answer.statusCode, 404)
  t.equal(answer.json().code, undefined)
})

t.test('start-up refuses weak or mismatched key material, naming the variable', async (t) => {
  const ed = keyFile(t, 'ed25519').file
  const weakRsa = keyFile(t, 'rsa', { modulusLength: 1024 }).file
  const p384 = keyFile(t, 'ec', { namedCurve: 'secp384r1' }).file
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const publicOnly = join(dir, 'public.pem')
  writeFileSync(publicOnly, generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }))
  const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['no key file', { JWT_ALGORITHM: 'EdDSA' }, /JWT_PRIVATE_KEY_FILE is required with JWT_ALGORITHM=EdDSA/],
    ['a file that is not there', { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: join(dir, 'missing.pem') }, /JWT_PRIVATE_KEY_FILE: cannot read .* \(ENOENT\)/],
    ['a public key', { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: publicOnly }, /JWT_PRIVATE_KEY_FILE must hold a PKCS#8 private key/],
    ['an Ed25519 key for ES256', { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: ed }, /JWT_ALGORITHM=ES256 needs a P-256/],
    ['a P-384 key for ES256', { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: p384 }, /needs a P-256/],
    ['RSA 1024', { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: weakRsa }, /at least 2048 bits \(this one has 1024\)/],
    ['a JWT_SECRET besides', { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: ed, JWT_SECRET: TEST_SECRET }, /JWT_SECRET is for HS256/],
    ['an algorithm we do not offer', { JWT_ALGORITHM: 'none' }, /JWT_ALGORITHM/],
  ]
  for (const [name, env, message] of cases) t.throws(() => loadConfig(env), message, name)
  const production = { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: ed }
  t.equal(loadConfig(production).jwt.algorithm, 'EdDSA', 'production in an asymmetric mode needs no JWT_SECRET')
})

t.test('asymmetric rotation: JWT_VERIFY_KEYS_FILE (PEM bundle or JWKS) verifies and publishes the other keys', async (t) => {
  const current = keyFile(t, 'ed25519')
  const next = keyFile(t, 'ec', { namedCurve: 'prime256v1' })
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pemBundle = join(dir, 'verify.pem')
  writeFileSync(pemBundle, [current.publicKey, next.publicKey].map(key => key.export({ format: 'pem', type: 'spki' })).join('\n'))
  const jwksFile = join(dir, 'verify.json')
  writeFileSync(jwksFile, JSON.stringify({ keys: [current.publicKey.export({ format: 'jwk' })] }))

  const prefix = { REDIS_KEY_PREFIX: uniqueKeyPrefix(), JWT_SECRET: '' }
  // (1) Every instance learns the next key; A still signs with the current one.
  const a = (await buildTestApp(t, 'redis', { ...prefix, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: current.file, JWT_VERIFY_KEYS_FILE: pemBundle })).app
  // (2) B has switched to the next key (ES256), keeping the current one for verification (a JWKS file).
  const b = (await buildTestApp(t, 'redis', { ...prefix, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: next.file, JWT_VERIFY_KEYS_FILE: jwksFile })).app
  const fromA = await loginTokens(a, USERS.alice)
  const fromB = await loginTokens(b, USERS.alice)
  t.equal((await profile(b, bearer(fromA.access_token))).statusCode, 200, 'B accepts A\'s tokens (the current key)')
  t.equal((await profile(a, bearer(fromB.access_token))).statusCode, 200, 'A accepts B\'s tokens (the next key)')
  const kids = async (app: typeof a) => ((await app.inject({ url: '/.well-known/jwks.json' })).json() as { keys: Array<{ kid: string, alg: string }> }).keys.map(k => `${k.alg}:${k.kid}`).sort()
  const expected = [`EdDSA:${jwkThumbprint(current.publicKey.export({ format: 'jwk' }) as Record<string, string>)}`, `ES256:${jwkThumbprint(next.publicKey.export({ format: 'jwk' }) as Record<string, string>)}`].sort()
  t.same(await kids(a), expected, 'A publishes both, once each')
  t.same(await kids(b), expected, 'so does B')
  // (3) Retired: B alone, without the old key.
  const retired = (await buildTestApp(t, 'redis', { ...prefix, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: next.file })).app
  t.equal((await profile(retired, bearer(fromA.access_token))).statusCode, 401, 'the retired key\'s tokens are refused')
  t.equal((await profile(retired, bearer(fromB.access_token))).statusCode, 200)
})

t.test('JWT_VERIFY_KEYS_FILE: public keys of a kind we use, nothing else', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, content: string) => { writeFileSync(join(dir, name), content); return join(dir, name) }
  const ed = generateKeyPairSync('ed25519')
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const cases: Array<[string, string, RegExp]> = [
    ['a private key', write('private.pem', ed.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), /public keys only/],
    ['a JWK with its private part', write('private.json', JSON.stringify({ keys: [ed.privateKey.export({ format: 'jwk' })] })), /public keys only/],
    ['nothing', write('empty.pem', 'hello'), /holds no public key/],
    ['a weak RSA key', write('weak.pem', weak.publicKey.export({ format: 'pem', type: 'spki' }) as string), /Ed25519, P-256 or RSA of at least 2048 bits/],
    ['JSON without keys', write('bad.json', '{"nope": 1}'), /public keys only/],
  ]
  for (const [name, file, message] of cases) t.throws(() => loadConfig({ JWT_VERIFY_KEYS_FILE: file }), message, name)
})
