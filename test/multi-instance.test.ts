import t, { type Test } from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'
import { uniqueKeyPrefix } from './helpers/redis.js'

/** Two instances of the API on one Redis, as behind a load balancer. */
async function twoInstances (t: Test, env: NodeJS.ProcessEnv = {}) {
  const shared = { REDIS_KEY_PREFIX: uniqueKeyPrefix(), ...env }
  const a = await buildTestApp(t, 'redis', shared)
  const b = await buildTestApp(t, 'redis', shared)
  return { a: a.app, b: b.app }
}

t.test('a logout through one instance is seen by the other on the next request', async (t) => {
  const { a, b } = await twoInstances(t)
  const tokens = await loginTokens(a, USERS.alice)
  t.equal((await profile(b, bearer(tokens.access_token))).statusCode, 200, 'B accepts a token A issued')
  t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })).statusCode, 204)
  t.equal((await profile(b, bearer(tokens.access_token))).statusCode, 401, 'B denies it at once')
  t.equal((await refresh(b, tokens.refresh_token)).statusCode, 401, 'and refuses its session refresh token')
})

t.test('a refresh token spent on one instance: replayed on the other within the window, the same successor; once that is spent, reuse that revokes everywhere', async (t) => {
  const { a, b } = await twoInstances(t)
  const first = await loginTokens(a, USERS.alice)
  const second = (await refresh(a, first.refresh_token)).json()
  t.equal((await refresh(b, first.refresh_token)).json().refresh_token, second.refresh_token, 'a retry through B gets A\'s successor')
  const third = (await refresh(b, second.refresh_token)).json()
  t.equal((await refresh(a, first.refresh_token)).statusCode, 401, 'the first token again, its successor spent: reuse')
  t.equal((await profile(b, bearer(third.access_token))).statusCode, 401, 'B denies the session from the next request on')
  t.equal((await refresh(b, third.refresh_token)).statusCode, 401)
})

t.test('concurrent refreshes spread over both instances: exactly one rotation, one successor for all', async (t) => {
  const { a, b } = await twoInstances(t)
  for (let round = 0; round < 10; round++) {
    const tokens = await loginTokens(a, USERS.alice)
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(i % 2 === 0 ? a : b, tokens.refresh_token)))
    t.same([...new Set(responses.map(r => r.statusCode))], [200], `round ${round}: all 200`)
    t.equal(new Set(responses.map(r => r.json().refresh_token)).size, 1, `round ${round}: one successor`)
  }
})

t.test('strict mode over both instances: exactly one of 20 concurrent refreshes wins', async (t) => {
  const { a, b } = await twoInstances(t, { REFRESH_REUSE_GRACE: '0' })
  for (let round = 0; round < 5; round++) {
    const tokens = await loginTokens(a, USERS.alice)
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(i % 2 === 0 ? a : b, tokens.refresh_token)))
    t.equal(responses.filter(r => r.statusCode === 200).length, 1, `round ${round}: one winner`)
    t.equal(responses.filter(r => r.statusCode === 401).length, 19, `round ${round}: the others get 401`)
  }
})

t.test('three instances on one Redis: logins, refreshes, session ends and password changes through any are seen by all on their next request', async (t) => {
  const shared = { REDIS_KEY_PREFIX: uniqueKeyPrefix() }
  const [a, b, c] = [(await buildTestApp(t, 'redis', shared)).app, (await buildTestApp(t, 'redis', shared)).app, (await buildTestApp(t, 'redis', shared)).app]
  const all = [a, b, c]
  const everywhere = async (accessToken: string) => Promise.all(all.map(async app => (await profile(app, bearer(accessToken))).statusCode))

  const phone = await loginTokens(a, USERS.alice)
  const laptop = await loginTokens(b, USERS.alice)
  const tablet = await loginTokens(c, USERS.alice)
  t.same(await everywhere(phone.access_token), [200, 200, 200], 'a login through A works on all three')
  const listed = await c.inject({ url: '/auth/sessions', headers: bearer(phone.access_token) })
  t.equal(listed.json().sessions.length, 3, 'C lists the sessions made through A, B and C')

  const rotated = (await refresh(b, phone.refresh_token)).json()
  t.same(await everywhere(rotated.access_token), [200, 200, 200], 'a refresh through B: its token works on all')
  t.equal((await refresh(c, rotated.refresh_token)).statusCode, 200, 'and C rotates what B issued')

  t.equal((await c.inject({ method: 'DELETE', url: `/auth/sessions/${laptop.refresh_token.split('.')[1]}`, headers: bearer(tablet.access_token) })).statusCode, 204, 'C ends the laptop session')
  t.same(await everywhere(laptop.access_token), [401, 401, 401], 'refused by all three on their next request')
  t.equal((await refresh(a, laptop.refresh_token)).statusCode, 401)

  t.equal((await a.inject({ method: 'POST', url: '/auth/password', headers: bearer(tablet.access_token), payload: { current_password: USERS.alice.password, new_password: 'a brand new passphrase' } })).statusCode, 204, 'A changes the password from the tablet')
  t.same(await everywhere(tablet.access_token), [200, 200, 200], 'the tablet\'s session lives everywhere')
  t.same(await everywhere(rotated.access_token), [401, 401, 401], 'the phone\'s session is ended everywhere')
  const phoneNow = await b.inject({ url: '/auth/sessions', headers: bearer(tablet.access_token) })
  t.same(phoneNow.json().sessions.map((s: { current: boolean }) => s.current), [true], 'B lists only the tablet\'s session')
  for (const app of all) t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: USERS.alice })).statusCode, 401, 'the old password fails on every instance')
  t.equal((await c.inject({ method: 'POST', url: '/auth/login', payload: { username: USERS.alice.username, password: 'a brand new passphrase' } })).statusCode, 200)

  t.equal((await b.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(tablet.access_token) })).statusCode, 204, 'B ends them all')
  t.same(await everywhere(tablet.access_token), [401, 401, 401])
})
