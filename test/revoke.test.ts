import t from 'tap'
import { CORE_STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'

// POST /auth/revoke (RFC 7009): JSON or a form, 200 with an empty body whatever the token was.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store: token revocation`, async (t) => {
    t.test('a refresh token ends its session; an access token is denied and its session lives on', async (t) => {
      const { stream, records } = logCapture()
      const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info' }, { logStream: stream })
      const first = await loginTokens(app, USERS.alice)
      const byForm = await app.inject({ method: 'POST', url: '/auth/revoke', headers: FORM, payload: new URLSearchParams({ token: first.refresh_token, token_type_hint: 'refresh_token' }).toString() })
      t.equal(byForm.statusCode, 200)
      t.equal(byForm.body, '', 'an empty body')
      t.equal(byForm.headers['cache-control'], 'no-store')
      t.equal((await refresh(app, first.refresh_token)).statusCode, 401, 'the refresh token is dead')
      t.equal((await profile(app, bearer(first.access_token))).statusCode, 401, 'and its session\'s access tokens')

      const second = await loginTokens(app, USERS.alice)
      const byJson = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: second.access_token, token_type_hint: 'refresh_token' } })
      t.equal(byJson.statusCode, 200, 'a wrong hint is no matter')
      t.equal(byJson.body, '')
      t.equal((await profile(app, bearer(second.access_token))).statusCode, 401, 'the access token is refused')
      const rotated = await refresh(app, second.refresh_token)
      t.equal(rotated.statusCode, 200, 'its session lives on')
      t.equal((await profile(app, bearer(rotated.json().access_token))).statusCode, 200, 'with new access tokens')

      t.match(records().filter(line => line.event === 'session_revoked'), [{ by: 'revoke_endpoint', sessionIds: [first.refresh_token.split('.')[1]] }])
      t.equal(records().filter(line => line.event === 'access_token_revoked').length, 1)
    })

    t.test('anything well-formed is the same 200; a missing token is a 400; forms elsewhere are still refused', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const answers = await Promise.all([
        { token: 'garbage' },
        { token: 'a.b.c' },
        { token: `${tokens.refresh_token.slice(0, -2)}xx` },
        { token: tokens.access_token.slice(0, -3) + 'abc', token_type_hint: 'access_token' },
        { token: 'x', token_type_hint: 'something_else' },
        { token: '' },
        { token: 'x'.repeat(10_000) },
      ].map(payload => app.inject({ method: 'POST', url: '/auth/revoke', payload })))
      t.same(answers.map(a => [a.statusCode, a.body]), Array(7).fill([200, '']), 'unknown, malformed, forged, empty, huge: all 200, empty')
      const twoHints = await app.inject({ method: 'POST', url: '/auth/revoke', headers: FORM, payload: 'token=x&token_type_hint=a&token_type_hint=b' })
      t.same([twoHints.statusCode, twoHints.body], [200, ''], 'a hint given twice in a form is ignored too')
      t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'and nothing was revoked')
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200)

      const missing = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token_type_hint: 'refresh_token' } })
      t.equal(missing.statusCode, 400)
      t.match(missing.json(), { code: 'FST_ERR_VALIDATION', message: /token/ })
      t.equal((await app.inject({ method: 'POST', url: '/auth/revoke', headers: FORM, payload: 'token_type_hint=x' })).statusCode, 400, 'a form without a token too')
      const formLogin = await app.inject({ method: 'POST', url: '/auth/login', headers: FORM, payload: new URLSearchParams(USERS.alice).toString() })
      t.equal(formLogin.statusCode, 415, 'login still refuses a form (its CSRF defence)')
    })

    t.test('rate-limited per client address with RATE_LIMIT_REFRESH_MAX', async (t) => {
      const { app } = await buildTestApp(t, store, { RATE_LIMIT_REFRESH_MAX: '2' })
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/auth/revoke', remoteAddress: '198.51.100.3', payload: { token: 'x' } })).statusCode)
      t.same(statuses, [200, 200, 429])
      t.equal((await app.inject({ method: 'POST', url: '/auth/revoke', remoteAddress: '198.51.100.4', payload: { token: 'x' } })).statusCode, 200, 'another client is not limited')
    })
  })
}
