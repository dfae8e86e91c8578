import type { AddressInfo } from 'node:net'
import t from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { launchChromium } from './helpers/browser.js'
import { setCookies } from './helpers/http.js'
import { httpsFront, selfSignedCertificate } from './helpers/https-front.js'

// A browser on a machine busy with the rest of the suite can take a while; tap's 30 s is too tight.
t.setTimeout(180_000)

/** What the SPA's calls resolve with. */
interface Answer { status: number, body: string }

const SITE = 'example.test'
const API_HOST = `api.${SITE}`
const EVIL_HOST = `evil.${SITE}`

/** The victim's SPA, served from the API's own origin: cookie mode, as the README describes it. */
const SPA_PAGE = `<!doctype html><title>SPA</title><script>
async function call (method, path, headers = {}, body) {
  const response = await fetch(path, { method, headers, body, credentials: 'same-origin' })
  return { status: response.status, body: await response.text() }
}
window.login = (username, password) => call('POST', '/auth/login', { 'content-type': 'application/json', 'x-auth-mode': 'cookie' }, JSON.stringify({ username, password }))
window.whoAmI = () => call('GET', '/api/profile')
window.refreshByCookie = () => call('POST', '/auth/refresh')
</script>`

/** The attacker's page on a sibling host of the same site: it plants its own tokens for the parent domain. */
function evilPage (access: string, refresh: string): string {
  return `<!doctype html><title>evil</title><script>
document.cookie = 'access_token=${access}; Domain=${SITE}; Path=/api; Secure'
document.cookie = 'refresh_token=${refresh}; Domain=${SITE}; Path=/auth/refresh; Secure'
document.title = 'tossed'
</script>`
}

t.test('cookie tossing from a sibling subdomain, in Chromium: the victim never works inside the attacker\'s account', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { TRUST_PROXY: '127.0.0.1' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const apiPort = (app.server.address() as AddressInfo).port

  // The attacker's own cookie-mode session, the tokens they will plant in the victim's browser.
  const attackerLogin = setCookies(await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { username: USERS.root.username, password: USERS.root.password } }))
  const attacker = { access: attackerLogin.get('access_token')?.value ?? '', refresh: attackerLogin.get('refresh_token')?.value ?? '' }

  const tls = selfSignedCertificate(SITE)
  const { port, server } = await httpsFront({
    key: tls.key,
    cert: tls.cert,
    apiHost: API_HOST,
    apiPort,
    pages (request, response) {
      const host = (request.headers.host ?? '').split(':')[0]
      const page = host === API_HOST && request.url === '/' ? SPA_PAGE : host === EVIL_HOST ? evilPage(attacker.access, attacker.refresh) : undefined
      if (page === undefined) return false
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page)
      return true
    },
  })
  t.teardown(() => server.close())

  const browser = await launchChromium(t, [
    `--host-resolver-rules=MAP *.${SITE} 127.0.0.1`,
    `--ignore-certificate-errors-spki-list=${tls.spkiPin}`,
  ])
  const context = await browser.newContext()
  const spa = await context.newPage()
  const apiOrigin = `https://${API_HOST}:${port}`
  await spa.goto(`${apiOrigin}/`)

  t.equal((await spa.evaluate<Answer>(`login('${USERS.alice.username}', '${USERS.alice.password}')`)).status, 200, 'the victim logs in (cookie mode)')
  t.equal(JSON.parse((await spa.evaluate<Answer>('whoAmI()')).body).username, USERS.alice.username, 'and sees their profile')
  const victimRefresh = (await context.cookies()).find(cookie => cookie.name === 'refresh_token')?.value ?? ''

  // The victim opens a page on the sibling host (a link, an ad, user content on another subdomain).
  const evil = await context.newPage()
  await evil.goto(`https://${EVIL_HOST}:${port}/`)
  t.equal(await evil.title(), 'tossed', 'the sibling page ran')
  const planted = (await context.cookies()).filter(cookie => cookie.domain === `.${SITE}`)
  t.same(planted.map(cookie => `${cookie.name} ${cookie.path}`).sort(), ['access_token /api', 'refresh_token /auth/refresh'], 'the browser now holds the attacker\'s cookies for the whole site')

  const seen = await spa.evaluate<Answer>('whoAmI()')
  t.equal(seen.status, 401, 'the SPA\'s next call is refused…')
  t.equal(JSON.parse(seen.body).code, 'DUPLICATE_TOKEN_COOKIE', '…as a doubled cookie')
  t.notMatch(seen.body, USERS.root.username, 'the attacker\'s profile is never shown')

  const refreshed = await spa.evaluate<Answer>('refreshByCookie()')
  t.equal(refreshed.status, 401, 'a cookie refresh with the planted refresh cookie is refused too')
  t.equal(JSON.parse(refreshed.body).code, 'DUPLICATE_TOKEN_COOKIE')

  t.same((await context.cookies()).filter(cookie => cookie.domain === `.${SITE}`), [], 'the refusals expired every planted cookie')
  const again = await spa.evaluate<Answer>('whoAmI()')
  t.equal(JSON.parse(again.body).username, USERS.alice.username, 'the SPA works on in the victim\'s own account')
  const rotated = await spa.evaluate<Answer>('refreshByCookie()')
  t.equal(rotated.status, 200, 'and refreshes its own session')
  t.equal(JSON.parse((await spa.evaluate<Answer>('whoAmI()')).body).username, USERS.alice.username, 'with the victim\'s identity')

  const victimRotated = (await context.cookies()).find(cookie => cookie.name === 'refresh_token')?.value
  t.not(victimRotated, victimRefresh, 'the refresh cookie rotated in the victim\'s own session')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: attacker.refresh } })).statusCode, 200, 'the attacker\'s planted refresh token was never spent in the victim\'s browser')
})
