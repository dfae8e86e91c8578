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
