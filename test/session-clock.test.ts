import { createSigner, createVerifier } from 'fast-jwt'
import t from 'tap'
import { InvalidRefreshTokenError } from '../src/errors.js'
import { hashPassword } from '../src/passwords.js'
import { MemoryStore } from '../src/store/index.js'
import { accessTokenCodec } from '../src/tokens/access-token.js'
import { TokenService } from '../src/tokens/token-service.js'
import { UserDirectory } from '../src/users.js'
import { TEST_SECRET, USERS } from './helpers/app.js'

// Session lifetimes in the core, on the embedded store and the token service's own clock: hours pass
// in no time. (test/session-lifetime.test.ts proves the same bounds over HTTP on Redis, in real seconds.)

const HOUR = 3_600_000

async function coreOnAClock (bounds: { refreshTokenTtl: number, sessionMaxAge: number }) {
  let now = Date.now()
  const clock = () => now
  const store = new MemoryStore(clock)
  const users = new UserDirectory(store)
  await users.seed([{ username: USERS.alice.username, roles: ['user'], passwordHash: await hashPassword(USERS.alice.password) }])
  const claims = { algorithm: 'HS256' as const, key: TEST_SECRET }
  const sign = createSigner({ ...claims, expiresIn: 900_000 })
  const signShorter = (lifetime: number) => createSigner({ ...claims, expiresIn: lifetime * 1000 })
  const codec = accessTokenCodec({
    sign: (payload, lifetime) => lifetime === undefined ? sign(payload) : signShorter(lifetime)(payload),
    verify: createVerifier({ ...claims }),
    verifyIgnoringExpiry: createVerifier({ ...claims, ignoreExpiration: true }),
  }, 900, clock)
  const tokens = new TokenService({ store, users, codec, accessTokenTtl: 900, ...bounds, maxSessionsPerUser: 10, refreshReuseGrace: 0, now: clock })
  return { tokens, store, pass: (ms: number) => { now += ms } }
}

const refused = (promise: Promise<unknown>) => promise.then(() => 'rotated', (err: unknown) => err instanceof InvalidRefreshTokenError ? 'refused' : `failed: ${String(err)}`)

t.test('a session ends REFRESH_TOKEN_TTL after its last use and SESSION_MAX_AGE after its login, whatever the refreshes', async (t) => {
  // Idle bound 2 h, absolute bound 5 h.
  const { tokens, store, pass } = await coreOnAClock({ refreshTokenTtl: 7200, sessionMaxAge: 18_000 })
  t.teardown(() => store.close())
  const used = await tokens.login(USERS.alice.username, USERS.alice.password)
  const unused = await tokens.login(USERS.alice.username, USERS.alice.password)
  t.equal(used.refreshTokenTtl, 7200, 'a new session lives its idle bound')

  pass(1.5 * HOUR)
  const first = await tokens.refresh(used.refreshToken)
  t.equal(first.refreshTokenTtl, 7200, 'a refresh extends it by the idle bound')
  pass(1 * HOUR) // 2.5 h: past the unused one's idle bound, not the refreshed one's
  t.equal(await refused(tokens.refresh(unused.refreshToken)), 'refused', 'unused for its idle bound: ended')
  const second = await tokens.refresh(first.refreshToken)
  pass(1.9 * HOUR) // 4.4 h
  const third = await tokens.refresh(second.refreshToken)
  t.ok(third.refreshTokenTtl <= 0.6 * 3600 && third.refreshTokenTtl > 0.5 * 3600, `near the absolute bound: what is left of it (${third.refreshTokenTtl} s)`)
  t.ok(third.accessTokenTtl <= third.refreshTokenTtl, 'and the access token never outlives the session')
  pass(0.7 * HOUR) // 5.1 h
  t.equal(await refused(tokens.refresh(third.refreshToken)), 'refused', 'past SESSION_MAX_AGE a freshly rotated token fails too')
})

t.test('the store forgets ended sessions as its clock passes their end', async (t) => {
  const { tokens, store, pass } = await coreOnAClock({ refreshTokenTtl: 60, sessionMaxAge: 120 })
  t.teardown(() => store.close())
  for (let i = 0; i < 5; i++) await tokens.login(USERS.alice.username, USERS.alice.password)
  t.equal(store.size.sessions, 5)
  pass(61_000)
  store.sweep()
  t.equal(store.size.sessions, 0, 'swept: memory stays bounded')
})
