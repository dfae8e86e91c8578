import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { userIdFor } from '../src/ids.js'
import { CORE_STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, profile, refresh, setCookies, type TokenBody } from './helpers/http.js'
import { logCapture } from './helpers/log.js'

// Sessions users can see and end, and admins can end: GET /auth/sessions, DELETE /auth/sessions/{id},
// POST /auth/logout-all, and /api/admin/users/{id}/sessions.

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

async function loginFrom (app: FastifyInstance, user: { username: string, password: string }, client: { ip: string, userAgent?: string }, headers: Record<string, string> = {}) {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress: client.ip,
    headers: { ...headers, ...(client.userAgent === undefined ? {} : { 'user-agent': client.userAgent }) },
    payload: user,
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode}`)
  return { ...(response.json() as Required<TokenBody>), cookies: setCookies(response) }
}

const sidOf = (tokens: { refresh_token: string }) => tokens.refresh_token.split('.')[1] ?? ''

async function sessionsOf (app: FastifyInstance, accessToken: string) {
  const response = await app.inject({ url: '/auth/sessions', headers: bearer(accessToken) })
  if (response.statusCode !== 200) throw new Error(`listing failed: ${response.statusCode}`)
  return (response.json() as { sessions: Array<Record<string, unknown>> }).sessions
}

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store: sessions`, async (t) => {
    t.test('the caller\'s live sessions, newest first, with the current one marked; a refresh updates it, a call does not', async (t) => {
      const { app } = await buildTestApp(t, store)
      const phone = await loginFrom(app, USERS.alice, { ip: '203.0.113.5', userAgent: 'Phone/1.0' })
      await new Promise(resolve => setTimeout(resolve, 5))
      const laptop = await loginFrom(app, USERS.alice, { ip: '198.51.100.7' }, { 'user-agent': '' })
      await loginFrom(app, USERS.root, { ip: '192.0.2.1' }) // someone else's

      const listed = await sessionsOf(app, phone.access_token)
      t.same(listed.map(s => s.id), [sidOf(laptop), sidOf(phone)], 'both of alice\'s, newest first')
      t.same(listed.map(s => s.current), [false, true], 'exactly the caller\'s is current')
      t.match(listed[1], { userAgent: 'Phone/1.0', ip: '203.0.113.5', createdAt: ISO, lastUsedAt: ISO })
      t.match(listed[0], { userAgent: null, ip: '198.51.100.7' }, 'an empty User-Agent is none')
      t.same(Object.keys(listed[0] ?? {}).sort(), ['createdAt', 'current', 'id', 'ip', 'lastUsedAt', 'userAgent'])
      t.equal(listed[1]?.createdAt, listed[1]?.lastUsedAt, 'last used: at its login')

      await profile(app, bearer(phone.access_token))
      t.equal((await sessionsOf(app, phone.access_token))[1]?.lastUsedAt, listed[1]?.lastUsedAt, 'a call with the access token writes nothing')
      await new Promise(resolve => setTimeout(resolve, 5))
      const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '203.0.113.99', headers: { 'user-agent': 'x'.repeat(300) }, payload: { refresh_token: phone.refresh_token } })
      const after = (await sessionsOf(app, refreshed.json().access_token)).find(s => s.id === sidOf(phone))
      t.ok(String(after?.lastUsedAt) > String(after?.createdAt), 'a refresh is a use')
      t.match(after, { ip: '203.0.113.99', userAgent: 'x'.repeat(256), current: true }, 'by the refreshing client, its User-Agent cut to 256 characters')
    })

    t.test('ending one of the caller\'s sessions: its tokens die on the next request; anything else is the same 404', async (t) => {
      const { app } = await buildTestApp(t, store)
      const mine = await loginFrom(app, USERS.alice, { ip: '203.0.113.5' })
      const other = await loginFrom(app, USERS.alice, { ip: '203.0.113.6' })
      const roots = await loginFrom(app, USERS.root, { ip: '192.0.2.1' })

      const notFound = await Promise.all([sidOf(roots), 'no-such-session', 'x'.repeat(500), '%00%22<>', sidOf(other) + 'x'].map(id =>
        app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(mine.access_token) })))
      const trailing = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(other)}/`, headers: bearer(mine.access_token) })
      t.equal(trailing.statusCode, 404, 'a path past the id: no such route')
      t.notMatch(trailing.body, sidOf(other), 'which does not echo the id either')
      for (const answer of notFound) {
        t.equal(answer.statusCode, 404)
        t.equal(answer.body, notFound[0]?.body, 'byte for byte the same body, whoever\'s or whatever the id')
      }
      t.same(notFound[0]?.json(), { statusCode: 404, error: 'Not Found', message: 'No such session', code: 'SESSION_NOT_FOUND' })
      t.equal((await profile(app, bearer(roots.access_token))).statusCode, 200, 'root\'s session lives on')

      const ended = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(other)}`, headers: bearer(mine.access_token) })
      t.equal(ended.statusCode, 204)
      t.equal(ended.body, '')
      t.equal((await profile(app, bearer(other.access_token))).statusCode, 401, 'its access token is refused')
      t.equal((await refresh(app, other.refresh_token)).statusCode, 401, 'its refresh token too')
      t.same((await sessionsOf(app, mine.access_token)).map(s => s.id), [sidOf(mine)])
      t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf(other)}`, headers: bearer(mine.access_token) })).statusCode, 404, 'ended: no longer one of mine')
    })

    t.test('ending the caller\'s own session clears its cookies; logout-all ends every session of the account', async (t) => {
      const { app } = await buildTestApp(t, store)
      const browser = await loginFrom(app, USERS.alice, { ip: '203.0.113.5' }, { 'x-auth-mode': 'cookie' })
      const accessCookie = String(browser.cookies.get('access_token')?.value)
      const own = await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf({ refresh_token: String(browser.cookies.get('refresh_token')?.value) })}`, cookies: { access_token: accessCookie } })
      t.equal(own.statusCode, 204)
      t.same([...setCookies(own).entries()].map(([name, c]) => [name, c.value, c.attributes.maxAge]).sort(), [['access_token', '', 0], ['refresh_token', '', 0]], 'both cookies cleared')

      const sessions = [await loginFrom(app, USERS.alice, { ip: '203.0.113.5' }), await loginFrom(app, USERS.alice, { ip: '203.0.113.6' }), await loginFrom(app, USERS.alice, { ip: '203.0.113.7' })]
      const roots = await loginFrom(app, USERS.root, { ip: '192.0.2.1' })
      const all = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(sessions[0]?.access_token ?? '') })
      t.equal(all.statusCode, 204)
      t.same([...setCookies(all).keys()].sort(), ['access_token', 'refresh_token'], 'cookies cleared, as on logout')
      for (const s of sessions) {
        t.equal((await profile(app, bearer(s.access_token))).statusCode, 401, 'every access token refused')
        t.equal((await refresh(app, s.refresh_token)).statusCode, 401, 'every refresh token dead')
      }
      t.equal((await profile(app, bearer(roots.access_token))).statusCode, 200, 'other accounts untouched')
    })

    t.test('admins list and end a user\'s sessions; others may not', async (t) => {
      const { stream, records } = logCapture()
      const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info' }, { logStream: stream })
      const admin = await loginFrom(app, USERS.root, { ip: '192.0.2.1' })
      const alice = [await loginFrom(app, USERS.alice, { ip: '203.0.113.5', userAgent: 'A' }), await loginFrom(app, USERS.alice, { ip: '203.0.113.6' })]
      const aliceId = userIdFor(USERS.alice.username)

      const listed = await app.inject({ url: `/api/admin/users/${aliceId}/sessions`, headers: bearer(admin.access_token) })
      t.equal(listed.statusCode, 200)
      const sessions = (listed.json() as { sessions: Array<Record<string, unknown>> }).sessions
      t.same(sessions.map(s => s.id), alice.map(sidOf).reverse(), 'alice\'s, newest first')
      t.same(Object.keys(sessions[0] ?? {}).sort(), ['createdAt', 'id', 'ip', 'lastUsedAt', 'userAgent'], 'no `current`: none of them is the admin\'s')
      t.same((await app.inject({ url: '/api/admin/users/nobody/sessions', headers: bearer(admin.access_token) })).json(), { sessions: [] }, 'an unknown user: none')
      t.same((await app.inject({ url: `/api/admin/users/${'x'.repeat(300)}/sessions`, headers: bearer(admin.access_token) })).json(), { sessions: [] }, 'an id no user can have: none')

      const refused = await app.inject({ method: 'DELETE', url: `/api/admin/users/${userIdFor(USERS.root.username)}/sessions`, headers: bearer(alice[0]?.access_token ?? '') })
      t.equal(refused.statusCode, 403, 'a user who is not an admin: 403')
      t.equal((await profile(app, bearer(admin.access_token))).statusCode, 200, 'and nothing was ended')

      const ended = await app.inject({ method: 'DELETE', url: `/api/admin/users/${aliceId}/sessions`, headers: bearer(admin.access_token) })
      t.equal(ended.statusCode, 204)
      for (const s of alice) t.equal((await profile(app, bearer(s.access_token))).statusCode, 401, 'alice\'s tokens are refused from the next request on')
      t.equal((await profile(app, bearer(admin.access_token))).statusCode, 200, 'the admin\'s own session lives')
      const audit = records().filter(line => line.event === 'session_revoked')
      t.match(audit, [{ by: 'admin', adminId: userIdFor(USERS.root.username), userId: aliceId }])
      t.same((audit[0]?.sessionIds as string[]).sort(), alice.map(sidOf).sort(), 'the audit line names the ended sessions')
    })

    t.test('behind a trusted proxy, a session records the forwarded client address', async (t) => {
      const { app } = await buildTestApp(t, store, { TRUST_PROXY: '10.0.0.1' })
      const viaProxy = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '198.51.100.23' }, payload: USERS.alice })
      const forged = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '203.0.113.50', headers: { 'x-forwarded-for': '198.51.100.99' }, payload: USERS.alice })
      const listed = await sessionsOf(app, viaProxy.json().access_token)
      t.same(listed.map(s => s.ip).sort(), ['198.51.100.23', '203.0.113.50'], 'the proxy\'s client, and an untrusted sender\'s own address (its header ignored)')
      t.equal(forged.statusCode, 200)
    })

    t.test('cookie-authenticated ends from another site are refused (CSRF), and end nothing', async (t) => {
      const { app } = await buildTestApp(t, store)
      const browser = await loginFrom(app, USERS.alice, { ip: '203.0.113.5' }, { 'x-auth-mode': 'cookie' })
      const cookies = { access_token: String(browser.cookies.get('access_token')?.value) }
      const headers = { origin: 'https://evil.example.com' }
      t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', cookies, headers })).statusCode, 403)
      t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${sidOf({ refresh_token: String(browser.cookies.get('refresh_token')?.value) })}`, cookies, headers })).statusCode, 403)
      const change = await app.inject({ method: 'POST', url: '/auth/password', cookies, headers, payload: { current_password: USERS.alice.password, new_password: 'a forged new passphrase' } })
      t.equal(change.statusCode, 403)
      t.equal(change.json().code, 'CROSS_SITE_REQUEST', 'a password change too')
      t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: USERS.alice })).statusCode, 200, 'the password is unchanged')
      t.equal((await app.inject({ url: '/api/profile', cookies })).statusCode, 200, 'the session lives')
    })
  })
}
