import t, { type Test } from 'tap'
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
  const { spaOrigin, records, context } = await apiSpaAndBrowser(t)
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
  const refreshesBefore = refreshTimes(records()).length
  const startedAt = Date.now()

  await new Promise(resolve => setTimeout(resolve, RUN_MS))
  const seen = await Promise.all([first, second].map(page => page.evaluate<Seen>('globalThis.spa')))
  const elapsed = Date.now() - startedAt
  const times = refreshTimes(records()).slice(refreshesBefore)

  for (const [i, tab] of seen.entries()) {
    t.same(Object.keys(tab.statuses), ['200'], `tab ${i + 1}: every answer the page saw was a 200 (${JSON.stringify(tab.statuses)})`)
    t.same(tab.failures, [], `tab ${i + 1}: no call failed`)
    t.equal(tab.signedOut, 0, `tab ${i + 1}: never signed out`)
    t.ok(tab.signedIn && tab.calls > 20, `tab ${i + 1}: still signed in after ${tab.calls} calls`)
  }
  // expires_in 3 s, taken as 2 s (one second of slack), refreshed 20 % early: one refresh per 1.6 s
  // for the whole origin. Both tabs know the expiry and both try; only one may refresh each time.
  onePerLifetime(t, times, elapsed)
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
})

t.test('body mode in two tabs of a page (tokens in memory, per tab), ACCESS_TOKEN_TTL=3: the tokens travel by BroadcastChannel, one refresh per token lifetime, never two at once', async (t) => {
  const { spaOrigin, apiUrl, records, context } = await apiSpaAndBrowser(t)
  const pageErrors: string[] = []
  const tabs = await Promise.all([1, 2].map(async () => {
    const page = await context.newPage()
    page.on('pageerror', err => pageErrors.push(err.message))
    // The example page gives the kit and openapi-fetch an import map; the tabs' own client is made here,
    // in body mode, on a channel of its own (the page's cookie-mode client keeps to its own).
    await page.goto(`${spaOrigin}/`)
    await page.locator('#login').waitFor()
    await page.evaluate(`(async () => {
      const { createAuthClient, platformCoordination } = await import('token-auth-client')
      let stored = null
      const storage = { get: () => stored, set: (tokens) => { stored = tokens }, clear: () => { stored = null } }
      const auth = createAuthClient({ baseUrl: ${JSON.stringify(apiUrl)}, transport: 'body', storage, coordination: platformCoordination('body-tabs') })
      const seen = { statuses: {}, failures: [], signedOut: 0, polling: false }
      auth.onSignedOut(() => { seen.signedOut++ })
      globalThis.bodyTab = { auth, seen }
    })()`)
    return page
  }))
  const [first, second] = tabs as [typeof tabs[0], typeof tabs[0]]
  await first.evaluate(`globalThis.bodyTab.auth.login(${JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password })})`)
  // The second tab never logged in: its tokens are the ones the first tab broadcast.
  t.equal(await second.evaluate<number>('globalThis.bodyTab.auth.fetch("/api/profile").then(r => r.status)'), 200, 'the second tab calls with the broadcast tokens')

  const refreshesBefore = refreshTimes(records()).length
  const startedAt = Date.now()
  const poll = `(async () => {
    const { auth, seen } = globalThis.bodyTab
    const until = Date.now() + ${RUN_MS}
    while (Date.now() < until) {
      try {
        const answer = await auth.fetch('/api/profile')
        seen.statuses[answer.status] = (seen.statuses[answer.status] ?? 0) + 1
      } catch (err) {
        seen.failures.push(String(err))
      }
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    return seen
  })()`
  const seen = await Promise.all(tabs.map(page => page.evaluate<{ statuses: Record<string, number>, failures: string[], signedOut: number }>(poll)))
  const elapsed = Date.now() - startedAt
  const times = refreshTimes(records()).slice(refreshesBefore)

  for (const [i, tab] of seen.entries()) {
    t.same(Object.keys(tab.statuses), ['200'], `tab ${i + 1}: every answer was a 200 (${JSON.stringify(tab.statuses)})`)
    t.same(tab.failures, [], `tab ${i + 1}: no call failed`)
    t.equal(tab.signedOut, 0, `tab ${i + 1}: never signed out`)
  }
  onePerLifetime(t, times, elapsed)
  t.notOk(records().some(line => line.event === 'refresh_replayed' || line.event === 'refresh_token_reused'), 'no tab presented a spent token')
  t.same(pageErrors, [], 'no error in either page')

  await second.evaluate('globalThis.bodyTab.auth.logout()')
  await first.waitForFunction('globalThis.bodyTab.seen.signedOut === 1', null, { timeout: 5000 })
  t.equal(await first.evaluate<number>('globalThis.bodyTab.seen.signedOut'), 1, 'a logout in one tab signs the other out, once')
  await t.rejects(first.evaluate('globalThis.bodyTab.auth.fetch("/api/profile")'), /Not signed in|SignedOut/, 'and its calls reject')
})

/**
 * The API on Redis with ACCESS_TOKEN_TTL=3 and its log captured, the example SPA on another port (one
 * site: both `localhost`), and a Chromium context whose tabs share cookies, storage and channels.
 */
async function apiSpaAndBrowser (t: Test) {
  const [apiPort, spaPort] = [await freePort(), await freePort()]
  const spaOrigin = `http://localhost:${spaPort}`
  const apiUrl = `http://localhost:${apiPort}`
  const { stream, records } = logCapture()
  const { app } = await buildTestApp(t, 'redis', { ACCESS_TOKEN_TTL: '3', CORS_ORIGINS: spaOrigin, LOG_LEVEL: 'info' }, { logStream: stream })
  await app.listen({ port: apiPort, host: '127.0.0.1' })
  const spa = await serveSpa({ apiUrl, port: spaPort })
  t.teardown(() => { spa.close() })
  const browser = await launchChromium(t, ['--host-resolver-rules=MAP localhost 127.0.0.1'])
  return { spaOrigin, apiUrl, records, context: await browser.newContext() }
}

/** When each POST /auth/refresh was answered (preflights left out), epoch ms. */
function refreshTimes (records: Array<Record<string, unknown>>): number[] {
  return records.filter(line => {
    const req = line.req as { method?: string, url?: string } | undefined
    return (line.msg === 'request completed' || line.msg === 'request errored') && req?.method === 'POST' && req.url === '/auth/refresh'
  }).map(line => Number(line.time))
}

/**
 * A 2 s lifetime (expires_in 3 less a second of slack) refreshed 20 % early: one refresh per 1.6 s for
 * the whole origin, and never two for one lifetime (a tab refreshing what another just refreshed).
 */
function onePerLifetime (t: Test, times: number[], elapsed: number): void {
  const perLifetime = elapsed / 1600
  t.ok(times.length >= perLifetime - 3 && times.length <= Math.ceil(perLifetime) + 1, `${times.length} refreshes in ${Math.round(elapsed / 1000)} s for both tabs: one per access-token lifetime (${perLifetime.toFixed(1)})`)
  const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0))
  t.ok(gaps.every(gap => gap > 800), `never two refreshes for one lifetime: gaps ${gaps.join(', ')} ms`)
}
