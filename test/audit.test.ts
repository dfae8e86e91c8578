import t from 'tap'
import { STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { userIdFor } from '../src/ids.js'

const INFO = 30
const WARN = 40
const VICTIM = userIdFor('alice')
const FORGED_SESSION = 'B'.repeat(22)
const FORGED_REFRESH_TOKEN = `${VICTIM}.${FORGED_SESSION}.${'C'.repeat(43)}`

/** Only the named fields of a log line, absent ones left out: for exact comparisons. */
function pick (line: Record<string, unknown> | undefined, ...names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.filter(name => line?.[name] !== undefined).map(name => [name, line?.[name]]))
}

for (const store of STORE_KINDS) {
  t.test(`${store} store: every security event is one structured line with a stable event name, the user and the request id`, async (t) => {
    const { stream, records } = logCapture()
    const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info', RATE_LIMIT_LOGIN_MAX: '2' }, { logStream: stream })
    const alice = userIdFor(USERS.alice.username)

    const first = await loginTokens(app, USERS.alice)
    const profile = (await app.inject({ url: '/api/profile', headers: bearer(first.access_token) })).json()
    t.equal(profile.id, alice, 'audit user ids are the ids the API reports')
    await login(app, USERS.alice.username, 'wrong-password')
    await login(app, USERS.alice.username, 'wrong-again') // the third attempt: over the limit
    await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.9', payload: { username: 'nobody', password: 'x' } })
    const second = (await refresh(app, first.refresh_token)).json()
    await refresh(app, first.refresh_token) // within the grace window: answered with the same successor
    await refresh(app, second.refresh_token)
    await refresh(app, first.refresh_token) // reuse (its successor is spent): revokes the session
    await refresh(app, 'not-a-token')
    await refresh(app, FORGED_REFRESH_TOKEN) // well-formed, naming a victim, never issued
    const other = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.10', payload: { username: USERS.root.username, password: USERS.root.password } })
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(other.json().access_token) })
    await app.close()

    const events = records().filter(line => line.event !== undefined)
    const session = (first.access_token.split('.')[1] ?? '')
    const sid = JSON.parse(Buffer.from(session, 'base64url').toString()).sid as string
    const rootSid = JSON.parse(Buffer.from(other.json().access_token.split('.')[1], 'base64url').toString()).sid as string

    t.same(events.map(e => e.event), [
      'login_succeeded', 'login_failed', 'rate_limited', 'login_failed', 'token_refreshed', 'refresh_replayed', 'token_refreshed',
      'refresh_token_reused', 'refresh_failed', 'refresh_failed', 'login_succeeded', 'logged_out',
    ], 'the events, in order')
    t.match(events[0], { level: INFO, event: 'login_succeeded', userId: alice, sessionId: sid })
    t.match(events[1], { level: INFO, event: 'login_failed', userId: alice })
    t.match(events[2], { level: WARN, event: 'rate_limited', limit: 'login', userId: alice })
    t.match(events[3], { level: INFO, event: 'login_failed', userId: userIdFor('nobody') })
    t.match(events[4], { level: INFO, event: 'token_refreshed', userId: alice, sessionId: sid })
    t.match(events[5], { level: INFO, event: 'refresh_replayed', userId: alice, sessionId: sid })
    t.match(events[6], { level: INFO, event: 'token_refreshed', userId: alice, sessionId: sid })
    t.match(events[7], { level: WARN, event: 'refresh_token_reused', userId: alice, sessionId: sid })
    t.match(events[8], { level: INFO, event: 'refresh_failed' })
    t.equal(events[8]?.claimedUserId, undefined, 'a malformed token names no user')
    t.same(pick(events[9], 'event', 'userId', 'sessionId', 'claimedUserId', 'claimedSessionId'), { event: 'refresh_failed', claimedUserId: VICTIM, claimedSessionId: FORGED_SESSION }, 'a forged token\'s ids are claims, never attributed to the user')
    t.match(events[10], { level: INFO, event: 'login_succeeded', userId: userIdFor('root'), sessionId: rootSid })
    t.match(events[11], { level: INFO, event: 'logged_out', userId: userIdFor('root'), sessionIds: [rootSid] })

    const requestIds = events.map(e => e.reqId)
    t.ok(requestIds.every(id => typeof id === 'string' && id !== ''), 'every event carries its request id')
    t.equal(new Set(requestIds).size, events.length, 'one request each')
    const text = JSON.stringify(events)
    for (const secret of [first.access_token, first.refresh_token, second.refresh_token, second.access_token, USERS.alice.password, 'wrong-password', 'nobody']) {
      t.notOk(text.includes(secret), `no secret or raw username in audit lines: ${secret.slice(0, 10)}…`)
    }
    t.equal(second.token_type, 'Bearer')
  })
}

for (const store of STORE_KINDS) {
  t.test(`${store} store: a flood over a limit is one rate_limited line per client, limit and window`, async (t) => {
    const { stream, records } = logCapture()
    const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info', RATE_LIMIT_LOGIN_MAX: '1', RATE_LIMIT_MAX: '15' }, { logStream: stream })
    const statuses: number[] = []
    const attempt = async (ip: string, username: string) => {
      statuses.push((await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username, password: 'wrong' } })).statusCode)
    }
    for (let i = 0; i < 11; i++) await attempt('192.0.2.20', 'alice') // 1 checked, 10 refused
    for (let i = 0; i < 3; i++) await attempt('192.0.2.20', 'root') // 1 checked, 2 refused
    for (let i = 0; i < 25; i++) statuses.push((await app.inject({ url: '/api/profile', remoteAddress: '192.0.2.21' })).statusCode) // 15 401s, 10 refused
    await app.close()

    t.equal(statuses.filter(status => status === 429).length, 22, 'every request over a limit was refused')
    const limited = records().filter(line => line.event === 'rate_limited')
    t.same(limited.map(line => pick(line, 'limit', 'ip', 'userId')), [
      { limit: 'login', ip: '192.0.2.20', userId: userIdFor('alice') },
      { limit: 'login', ip: '192.0.2.20', userId: userIdFor('root') },
      { limit: 'api', ip: '192.0.2.21' },
    ], 'one line per client and limit, naming the client')
    t.equal(limited.length, 3, 'and no more')
  })
}
