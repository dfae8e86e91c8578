import t from 'tap'
import { userIdFor } from '../src/ids.js'
import { CORE_STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { STORES, userSession } from './helpers/stores.js'

// POST /auth/password: the current password checked, the new one stored, every other session ended.

const NEW_PASSWORD = 'correct horse battery staple'

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store: changing the password`, async (t) => {
    t.test('keeps the caller\'s session, ends every other, and the new password is the one that logs in', async (t) => {
      const { stream, records } = logCapture()
      const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info' }, { logStream: stream })
      const caller = await loginTokens(app, USERS.alice)
      const others = [await loginTokens(app, USERS.alice), await loginTokens(app, USERS.alice)]
      const root = await loginTokens(app, USERS.root)
      const changed = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(caller.access_token), payload: { current_password: USERS.alice.password, new_password: NEW_PASSWORD } })
      t.equal(changed.statusCode, 204)
      t.equal(changed.body, '')

      t.equal((await profile(app, bearer(caller.access_token))).statusCode, 200, 'the caller\'s access token still works')
      t.equal((await refresh(app, caller.refresh_token)).statusCode, 200, 'and its refresh token')
      for (const other of others) {
        t.equal((await profile(app, bearer(other.access_token))).statusCode, 401, 'another session\'s access token is refused')
        t.equal((await refresh(app, other.refresh_token)).statusCode, 401, 'and its refresh token')
      }
      t.equal((await profile(app, bearer(root.access_token))).statusCode, 200, 'other accounts untouched')
      t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 401, 'the old password no longer logs in')
      t.equal((await login(app, USERS.alice.username, NEW_PASSWORD)).statusCode, 200, 'the new one does')

      const aliceId = userIdFor(USERS.alice.username)
      t.match(records().filter(line => line.event === 'password_changed'), [{ userId: aliceId }])
      const revoked = records().filter(line => line.event === 'session_revoked')
      t.match(revoked, [{ by: 'password_change', userId: aliceId }])
      t.equal((revoked[0]?.sessionIds as string[]).length, 2, 'naming the two sessions it ended')
      t.notMatch(JSON.stringify(records()), new RegExp(`${NEW_PASSWORD}|${USERS.alice.password}`), 'neither password reaches the log')
    })

    t.test('a wrong current password: 403 INVALID_CURRENT_PASSWORD, nothing changed; schema errors first; every attempt counted', async (t) => {
      const { app } = await buildTestApp(t, store, { RATE_LIMIT_LOGIN_MAX: '3' })
      const caller = await loginTokens(app, USERS.alice)
      const other = await loginTokens(app, USERS.alice)
      const change = (body: unknown) => app.inject({ method: 'POST', url: '/auth/password', remoteAddress: '203.0.113.4', headers: bearer(caller.access_token), payload: body as string })

      const short = await change({ current_password: USERS.alice.password, new_password: 'short' })
      t.equal(short.statusCode, 400)
      t.match(short.json(), { code: 'FST_ERR_VALIDATION', message: /new_password must NOT have fewer than 12 characters/ })
      t.equal((await change({ current_password: 'wrong', new_password: 'x'.repeat(1025) })).statusCode, 400, 'too long: 400, before the password is checked')
      t.equal((await change({ new_password: NEW_PASSWORD })).statusCode, 400, 'no current password: 400')

      const wrong = await change({ current_password: 'not-her-password', new_password: NEW_PASSWORD })
      t.equal(wrong.statusCode, 403, 'not 401: the session is fine')
      t.same(wrong.json(), { statusCode: 403, error: 'Forbidden', message: 'The current password is wrong', code: 'INVALID_CURRENT_PASSWORD' })
      t.equal(wrong.headers['www-authenticate'], undefined, 'no challenge: the token was not the problem')
      t.equal((await profile(app, bearer(other.access_token))).statusCode, 200, 'no session was ended')
      t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 200, 'the password is unchanged')

      // Three attempts from this address (400s are not counted): the fourth is over the login limit.
      t.equal((await change({ current_password: 'still-not-it', new_password: NEW_PASSWORD })).statusCode, 403)
      t.equal((await change({ current_password: USERS.alice.password, new_password: NEW_PASSWORD })).statusCode, 204, 'the third attempt')
      const limited = await change({ current_password: NEW_PASSWORD, new_password: 'yet another passphrase' })
      t.equal(limited.statusCode, 429, 'the fourth: the login limit of this user and address')
      const loginLimited = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '203.0.113.4', payload: { username: USERS.alice.username, password: NEW_PASSWORD } })
      t.equal(loginLimited.statusCode, 429, 'the same counter as logins: alice cannot log in from there either this minute')
    })

    t.test('a login with the old password racing the change never leaves a working session behind', async (t) => {
      const { app } = await buildTestApp(t, store)
      let password: string = USERS.alice.password
      for (let round = 0; round < 6; round++) {
        const tokens = await loginTokens(app, { username: USERS.alice.username, password })
        const next = `round ${round} new passphrase`
        const [raced, changed] = await Promise.all([
          app.inject({ method: 'POST', url: '/auth/login', remoteAddress: `198.51.100.${round + 1}`, payload: { username: USERS.alice.username, password } }),
          app.inject({ method: 'POST', url: '/auth/password', remoteAddress: `198.51.100.${round + 1}`, headers: bearer(tokens.access_token), payload: { current_password: password, new_password: next } }),
        ])
        t.equal(changed?.statusCode, 204, `round ${round}: changed`)
        if (raced?.statusCode === 200) {
          t.equal((await profile(app, bearer(raced.json().access_token))).statusCode, 401, `round ${round}: the racing login's session was ended`)
          t.equal((await refresh(app, raced.json().refresh_token)).statusCode, 401)
        } else {
          t.equal(raced?.statusCode, 401, `round ${round}: the racing login was refused`)
        }
        password = next
      }
    })

    t.test('two changes at once with the right password: one wins, the other is refused', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const [a, b] = await Promise.all(['first new passphrase', 'second new passphrase'].map(next =>
        app.inject({ method: 'POST', url: '/auth/password', headers: bearer(tokens.access_token), payload: { current_password: USERS.alice.password, new_password: next } })))
      t.same([a?.statusCode, b?.statusCode].sort(), [204, 403], 'one 204, one 403')
      const winner = a?.statusCode === 204 ? 'first new passphrase' : 'second new passphrase'
      t.equal((await login(app, USERS.alice.username, winner)).statusCode, 200, 'the winner\'s password is the one stored')
    })
  })
}

for (const [kind, open] of STORES) {
  t.test(`${kind} store: the password hash is replaced only if it is still the one checked`, async (t) => {
    const store = await open(t)
    const s = await userSession(store)
    t.equal(await store.replacePasswordHash(s.userId, 'not-it', 'new'), false)
    t.equal((await store.getUser(s.userId))?.passwordHash, 'h')
    t.equal(await store.replacePasswordHash(s.userId, 'h', 'new'), true)
    t.equal((await store.getUser(s.userId))?.passwordHash, 'new')
    t.equal(await store.replacePasswordHash('no-such-user', 'h', 'new'), false, 'no account: nothing created')
    t.equal(await store.getUser('no-such-user'), null)
  })
}
