import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildTestApp } from './helpers/app.js'
import { bearer, profile } from './helpers/http.js'
import { API_AUDIENCE, AUTH0_ROLES_CLAIM, TestOidcProvider, providersFile } from './helpers/oidc-provider.js'

// The JWKS refetch window as the app has it (10 s, not a test's shorter one), over HTTP.

t.test('a key the provider starts signing with is accepted within 10 s, without a restart; made-up kids meanwhile cost the provider no request', async (t) => {
  const provider = await TestOidcProvider.start('auth0')
  t.teardown(() => provider.stop())
  const file = providersFile([{ name: 'auth0', issuer: provider.issuer, audience: API_AUDIENCE, rolesClaim: AUTH0_ROLES_CLAIM }])
  const { app } = await buildTestApp(t, 'memory', { OIDC_PROVIDERS_FILE: file })

  const firstFetchAt = Date.now()
  t.equal((await profile(app, bearer(await provider.mint({ sub: 'a', aud: API_AUDIENCE })))).statusCode, 200, 'its keys fetched at the first token')
  const requests = provider.jwksRequests
  t.equal(requests, 1)

  const next = await provider.rotateKey()
  const signedWithNext = await provider.mint({ sub: 'a', aud: API_AUDIENCE }, { key: next })
  const madeUp = await Promise.all(Array.from({ length: 20 }, (_, i) => provider.mint({ sub: 'a', aud: API_AUDIENCE }, { header: { kid: `made-up-${i}` } })))
  const statuses = new Set<number>()
  // Two seconds of a flood: twenty made-up kids at a time, and the new key's token with them.
  while (Date.now() - firstFetchAt < 2000) {
    const answers = await Promise.all([...madeUp, signedWithNext].map(token => profile(app, bearer(token))))
    for (const answer of answers) statuses.add(answer.statusCode)
  }
  t.same([...statuses], [401], 'inside the window: unknown kids are 401s, the new key\'s token too')
  t.equal(provider.jwksRequests, requests, 'and the provider was not asked again')

  await sleep(Math.max(0, firstFetchAt + 10_200 - Date.now()))
  t.equal((await profile(app, bearer(signedWithNext))).statusCode, 200, 'ten seconds on: fetched again, the new key accepted')
  t.equal(provider.jwksRequests, requests + 1, 'with one request')
  t.equal((await profile(app, bearer(madeUp[0] ?? ''))).statusCode, 401, 'a made-up kid right after: 401, no request')
  t.equal(provider.jwksRequests, requests + 1)
})
