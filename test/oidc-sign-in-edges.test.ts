import t from 'tap'
import { bearer, profile, setCookies } from './helpers/http.js'
import { start, withSignIn } from './helpers/sign-in.js'
import { externalUserId } from '../src/ids.js'

// Browser sign-in at its edges: unknown names, a provider that cannot be reached, claims only in
// userinfo, the redirect URI behind a proxy, the API-wide rate limit.

t.test('unknown providers and sign-in-only names: 404; a provider that cannot be reached: 503 within about a second', async (t) => {
  const { app, providers } = await withSignIn(t)
  for (const url of ['/auth/oidc/nope/start', '/auth/oidc/nope/callback?state=x', '/auth/oidc/resource-only/start']) {
    const response = await app.inject({ url })
    t.equal(response.statusCode, 404, url)
    t.match(response.json(), { code: 'UNKNOWN_PROVIDER' })
  }
  await providers.google.down()
  const began = Date.now()
  const unreachable = await app.inject({ url: '/auth/oidc/google/start' })
  t.equal(unreachable.statusCode, 503)
  t.match(unreachable.json(), { code: 'PROVIDER_UNAVAILABLE' })
  t.equal(unreachable.headers['retry-after'], '1')
  t.ok(Date.now() - began < 2500, `answered in ${Date.now() - began} ms`)
  const againAt = Date.now()
  t.equal((await app.inject({ url: '/auth/oidc/google/start' })).statusCode, 503)
  t.ok(Date.now() - againAt < 500, `right after a failed discovery: 503 at once, the provider not asked again (${Date.now() - againAt} ms)`)
  await providers.google.up()
  const backAt = Date.now()
  let status = 503
  while (status === 503 && Date.now() - backAt < 10_000) {
    await new Promise(resolve => setTimeout(resolve, 250))
    status = (await start(app, 'google')).response.statusCode
  }
  t.equal(status, 302, `and once it is back, sign-in works again (after ${Date.now() - backAt} ms)`)
})

t.test('a provider whose token endpoint fails (a 502 from its gateway) is a 503, not a refused sign-in', async (t) => {
  const { app, providers } = await withSignIn(t)
  const started = await start(app, 'auth0')
  const back = await providers.auth0.signIn(started.location, 'someone')
  providers.auth0.tokenEndpointFailing = true
  const answer = await app.inject({ url: `${back.pathname}${back.search}`, cookies: { oidc_state: started.state?.value ?? '' } })
  t.equal(answer.statusCode, 503)
  t.match(answer.json(), { code: 'PROVIDER_UNAVAILABLE' })
  t.notOk(setCookies(answer).has('access_token'), 'no session')
})

t.test('roles and profile from userinfo when the ID token carries only sub; redirect_uri from the request behind a trusted proxy', async (t) => {
  const { app, providers } = await withSignIn(t, 'memory', { google: { claimsInUserinfo: true, redirectUris: ['https://api.example.test/auth/oidc/google/callback'] }, env: { PUBLIC_ORIGIN: '', TRUST_PROXY: '127.0.0.1' } })
  const proxied = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.test' }
  const started = await app.inject({ url: '/auth/oidc/google/start', headers: proxied })
  t.equal(started.statusCode, 302, started.body)
  t.equal(new URL(started.headers.location ?? '').searchParams.get('redirect_uri'), 'https://api.example.test/auth/oidc/google/callback', 'the origin the browser used, through the trusted proxy')
  const back = await providers.google.signIn(started.headers.location ?? '', 'admin')
  const callback = await app.inject({ url: `${back.pathname}${back.search}`, headers: proxied, cookies: { oidc_state: setCookies(started).get('oidc_state')?.value ?? '' } })
  t.equal(callback.statusCode, 302, callback.body)
  t.equal(callback.headers.location, 'https://api.example.test/')
  t.same((await profile(app, bearer(setCookies(callback).get('access_token')?.value ?? ''))).json(),
    { id: externalUserId(providers.google.issuer, 'admin'), username: 'admin', email: 'admin@example.test', roles: ['user', 'admin'] }, 'profile and roles from userinfo')
})

t.test('/auth/oidc/* counts under RATE_LIMIT_MAX', async (t) => {
  const { app } = await withSignIn(t, 'memory', { env: { RATE_LIMIT_MAX: '3' } })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ url: '/auth/oidc/nope/start' })).statusCode)
  t.same(statuses, [404, 404, 404, 429])
})
