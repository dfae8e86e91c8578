import t from 'tap'
import { serveSpa } from '../examples/spa/serve.mjs'
import { buildTestApp } from './helpers/app.js'
import { launchChromium } from './helpers/browser.js'
import { API_AUDIENCE, AUTH0_ROLES_CLAIM, TEST_USER_PASSWORD, TestOidcProvider, providersFile } from './helpers/oidc-provider.js'
import { freePort } from './helpers/redis.js'
import { externalUserId } from '../src/ids.js'

// The browser sign-in as Chromium runs it: our /start, the provider's login and consent pages, the
// provider's redirect back (a cross-site navigation: the SameSite=Lax state cookie must come along),
// our callback's cookies, and the example SPA it returns to, signed in by them.

t.setTimeout(120_000)

t.test('Chromium signs in through an Auth0-like provider and returns to the example SPA, signed in by our cookies', async (t) => {
  const [apiPort, spaPort] = [await freePort(), await freePort()]
  const apiOrigin = `http://localhost:${apiPort}`
  const spaOrigin = `http://localhost:${spaPort}`
  const provider = await TestOidcProvider.start('auth0', { redirectUris: [`${apiOrigin}/auth/oidc/auth0/callback`] })
  t.teardown(() => provider.stop())
  const file = providersFile([{ name: 'auth0', issuer: provider.issuer, audience: API_AUDIENCE, clientId: 'web', clientSecret: 'web-secret', rolesClaim: AUTH0_ROLES_CLAIM }])
  // No PUBLIC_ORIGIN: the redirect URI is the origin the browser used.
  const { app } = await buildTestApp(t, 'redis', { OIDC_PROVIDERS_FILE: file, OIDC_RETURN_ORIGINS: spaOrigin, CORS_ORIGINS: spaOrigin })
  await app.listen({ port: apiPort, host: '127.0.0.1' })
  const spa = await serveSpa({ apiUrl: apiOrigin, port: spaPort })
  t.teardown(() => { spa.close() })

  // The provider's certificate is the suite CA's, which Node trusts (NODE_EXTRA_CA_CERTS) and this browser does not.
  const browser = await launchChromium(t, ['--host-resolver-rules=MAP localhost 127.0.0.1', '--ignore-certificate-errors'])
  const page = await (await browser.newContext()).newPage()
  const answers: Array<{ url: string, status: number }> = []
  page.on('response', response => { answers.push({ url: response.url(), status: response.status() }) })

  await page.goto(`${apiOrigin}/auth/oidc/auth0/start?return_to=${encodeURIComponent(`${spaOrigin}/`)}`)
  await page.fill('input[name=login]', 'admin')
  await page.fill('input[name=password]', TEST_USER_PASSWORD)
  await page.click('button[type=submit]')
  // The consent page: one button.
  await page.locator('button[type=submit]').first().click()
  await page.waitForURL(`${spaOrigin}/`)
  // The SPA finds itself signed in: its cookie-mode client refreshes with the cookie the callback set.
  await page.locator('#username').filter({ hasText: 'admin' }).waitFor()

  const callback = answers.find(answer => answer.url.startsWith(`${apiOrigin}/auth/oidc/auth0/callback?`))
  t.equal(callback?.status, 302, 'the callback took the state cookie back from the cross-site redirect and signed in')
  const cookies = await page.context().cookies()
  t.match(cookies.find(cookie => cookie.name === 'access_token'), { httpOnly: true, secure: true, sameSite: 'Strict', path: '/' })
  t.match(cookies.find(cookie => cookie.name === 'refresh_token'), { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' })
  t.notOk(cookies.some(cookie => cookie.name === 'oidc_state'), 'the state cookie is gone')

  // The page's own calls carry them (same site: another port of localhost).
  const call = (path: string) => page.evaluate(async (url) => {
    const response = await fetch(url, { credentials: 'include' })
    return { status: response.status, body: await response.json() as unknown }
  }, `${apiOrigin}${path}`)
  t.same(await call('/api/profile'), { status: 200, body: { id: externalUserId(provider.issuer, 'admin'), username: 'admin', email: 'admin@example.test', roles: ['user', 'admin'] } })
  t.equal((await call('/api/admin')).status, 200, 'the provider\'s admin role opens /api/admin')
})
