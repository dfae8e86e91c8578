import t, { type Test } from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'
import { uniqueKeyPrefix } from './helpers/redis.js'

/** Two instances of the API on one Redis, as behind a load balancer. */
async function twoInstances (t: Test) {
  const shared = { REDIS_KEY_PREFIX: uniqueKeyPrefix() }
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

t.test('a refresh token spent on one instance is reuse on the other, and revokes everywhere', async (t) => {
  const { a, b } = await twoInstances(t)
  const first = await loginTokens(a, USERS.alice)
  const second = (await refresh(a, first.refresh_token)).json()
  t.equal((await refresh(b, first.refresh_token)).statusCode, 401, 'replay on B fails')
  t.equal((await profile(a, bearer(second.access_token))).statusCode, 401, 'A denies the session from the next request on')
  t.equal((await refresh(a, second.refresh_token)).statusCode, 401)
})

t.test('concurrent refreshes spread over both instances: exactly one wins', async (t) => {
  const { a, b } = await twoInstances(t)
  for (let round = 0; round < 10; round++) {
    const tokens = await loginTokens(a, USERS.alice)
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(i % 2 === 0 ? a : b, tokens.refresh_token)))
    t.equal(responses.filter(r => r.statusCode === 200).length, 1, `round ${round}: one winner`)
    t.equal(responses.filter(r => r.statusCode === 401).length, 19, `round ${round}: the others get 401`)
  }
})
