import t from 'tap'
import { serveSpa } from '../examples/spa/serve.mjs'
import { USERS, buildTestApp } from './helpers/app.js'
import { launchChromium } from './helpers/browser.js'
import { logCapture } from './helpers/log.js'
import { freePort } from './helpers/redis.js'

// Two tabs and a browser's tempo: seconds of polling on a machine busy with the rest of the suite.
t.setTimeout(180_000)

const RUN_MS = 15_000

interface Seen { calls: number, statuses: Record<string, number>, failures: string[], signedIn: boolean, signedOut: number }

t.test('the example SPA in two tabs, ACCESS_TOKEN_TTL=3, polling for 15 s: no 401 reaches a page, no tab is signed out, one refresh per token lifetime', async (t) => {
  const [apiPort, spaPort] = [await freePort(), await freePort()]
  const spaOrigin = `http://localhost:${spaPort}`
  const { stream, records, requestUrls } = logCapture()
  const { app } = await buildTestApp(t, 'redis', { ACCESS_TOKEN_TTL: '3', CORS_ORIGINS: spaOrigin, LOG_LEVEL: 'info' }, { logStream: stream })
  await app.listen({ port: apiPort, host: '127.0.0.1' })
  const spa = await serveSpa({ apiUrl: `http://localhost:${apiPort}`, port: spaPort })
  t.teardown(() => { spa.close() })

  const browser = await launchChromium(t, ['--host-resolver-rules=MAP localhost 127.0.0.1'])
  const context = await browser.newContext()
  const first = await context.newPage()
  const pageErrors: string[] = []
  first.on('pageerror', err => pageErrors.push(err.message))
  await first.goto(`${spaOrigin}/`)
  await first.locator('#login').waitFor()
  await first.fill('input[name=username]', USERS.alice.username)
  await first.fill('input[name=password]', USERS.alice.password)
  await first.click('#login button[type=submit]')
  await first.locator('#username').filter({ hasText: USERS.alice.username }).waitFor()

  // Opened after the first signed in: works from the shared cookies, without logging in.
  const second = await context.newPage()
  second.on('pageerror', err => pageErrors.push(err.message))
  await second.goto(`${spaOrigin}/`)
  await second.locator('#username').filter({ hasText: USERS.alice.username }).waitFor()
  const refreshesBefore = refreshCount()
  const startedAt = Date.now()

  await new Promise(resolve => setTimeout(resolve, RUN_MS))
  const seen = await Promise.all([first, second].map(page => page.evaluate<Seen>('globalThis.spa')))
  const refreshes = refreshCount() - refreshesBefore
  const elapsed = Date.now() - startedAt

  for (const [i, tab] of seen.entries()) {
    t.same(Object.keys(tab.statuses), ['200'], `tab ${i + 1}: every answer the page saw was a 200 (${JSON.stringify(tab.statuses)})`)
    t.same(tab.failures, [], `tab ${i + 1}: no call failed`)
    t.equal(tab.signedOut, 0, `tab ${i + 1}: never signed out`)
    t.ok(tab.signedIn && tab.calls > 20, `tab ${i + 1}: still signed in after ${tab.calls} calls`)
  }
  // expires_in 3 s, taken as 2 s (one second of slack), refreshed 20 % early: one refresh per 1.6 s
  // for the whole origin. Both tabs know the expiry and both try; without the origin's lock (tried:
  // 15 refreshes in 15 s) each would refresh; seen with it: 9 to 12.
  const perLifetime = elapsed / 1600
  t.ok(refreshes >= perLifetime - 3 && refreshes <= perLifetime + 4, `${refreshes} refreshes in ${Math.round(elapsed / 1000)} s for both tabs: one per access-token lifetime (${perLifetime.toFixed(1)})`)
  t.same(pageErrors, [], 'no error in either page')

  const refreshCookie = (await context.cookies()).find(cookie => cookie.name === 'refresh_token')
  t.equal(refreshCookie?.httpOnly, true, 'the refresh token lives in an HttpOnly cookie')
  for (const [i, page] of [first, second].entries()) {
    const readable = await page.evaluate<string>('document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)')
    t.notOk(readable.includes(refreshCookie?.value ?? '(none)'), `tab ${i + 1}: no script can read it (document.cookie, localStorage, sessionStorage)`)
  }

  // Logging out in one tab signs the other out too (BroadcastChannel), and the server ended the session.
  await first.click('#logout')
  await first.locator('#login').waitFor()
  await second.locator('#login').waitFor({ timeout: 5000 })
  const afterLogout = await second.evaluate<Seen>('globalThis.spa')
  t.equal(afterLogout.signedOut, 1, 'the other tab heard the logout')
  t.notOk((await context.cookies()).some(cookie => cookie.name === 'refresh_token' && cookie.value !== ''), 'the refresh cookie is gone')
  t.ok(records().some(line => line.event === 'logged_out' && Array.isArray(line.sessionIds) && line.sessionIds.length === 1), 'the server ended the session')

  function refreshCount (): number {
    return requestUrls().filter(url => url === '/auth/refresh').length
  }
})
