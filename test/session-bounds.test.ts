import t, { type Test } from 'tap'
import type { MemoryStore } from '../src/store/index.js'
import { STORE_KINDS, USERS, buildTestApp, type StoreKind } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { withRedis } from './helpers/redis.js'

const logout = (app: Awaited<ReturnType<typeof buildTestApp>>['app'], refreshToken: string) =>
  app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })

async function suite (t: Test, store: StoreKind) {
  t.test('500 chained refreshes: the session stays the same size, a token 32 rotations back still revokes, an older one is merely invalid', async (t) => {
    const { app, config } = await buildTestApp(t, store)
    const first = await loginTokens(app, USERS.alice)
    const refreshTokens = [first.refresh_token]
    const userId = first.refresh_token.split('.')[0]
    const sessionId = first.refresh_token.split('.')[1]

    /** The session's footprint: bytes of its keys in Redis, spent hashes held in memory. */
    const footprint = async (): Promise<number> => {
      if (config.redisUrl === undefined) return (app.store as MemoryStore).size.spentHashes
      const base = `${config.redisKeyPrefix}{user:${userId}}`
      return withRedis(config.redisUrl, async redis => {
        let bytes = 0
        for (const key of [`${base}:session:${sessionId}`, `${base}:spent-recent:${sessionId}`, `${base}:sessions`]) bytes += Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0)
        return bytes
      })
    }

    let at40 = 0
    for (let i = 1; i <= 500; i++) {
      const answer = await refresh(app, refreshTokens.at(-1) ?? '')
      if (answer.statusCode !== 200) throw new Error(`refresh ${i}: ${answer.statusCode} ${answer.body}`)
      refreshTokens.push(answer.json().refresh_token)
      if (i === 40) at40 = await footprint()
    }
    const at500 = await footprint()
    if (store === 'redis') t.ok(Math.abs(at500 - at40) <= 1024, `the session's keys: ${at40} bytes at rotation 40, ${at500} at rotation 500`)
    else t.same([at40, at500], [32, 32], 'the session holds 32 spent hashes at rotation 40 and at rotation 500')

    const live = refreshTokens[500] ?? ''
    const forgotten = refreshTokens[500 - 33] ?? ''
    t.equal((await refresh(app, forgotten)).json().code, 'INVALID_REFRESH_TOKEN', '33 rotations back: 401')
    t.equal((await logout(app, refreshTokens[0] ?? '')).statusCode, 204, 'a logout with the login\'s token (long forgotten)…')
    const stillLive = await refresh(app, live)
    t.equal(stillLive.statusCode, 200, '…ended nothing: the session lives on')
    const newest = stillLive.json().refresh_token
    // `live` is now spent too: refreshTokens[469..500] are the last 32 spent.
    const recent = refreshTokens[500 - 31] ?? ''
    t.equal((await refresh(app, recent)).json().code, 'INVALID_REFRESH_TOKEN', '32 rotations back: 401…')
    t.equal((await refresh(app, newest)).statusCode, 401, '…and the session is revoked: its newest token is dead')
  })

  t.test('logout with a spent refresh token: 32 rotations back ends the session, 33 back ends nothing', async (t) => {
    const { app } = await buildTestApp(t, store)
    const chain = async () => {
      const tokens = [(await loginTokens(app, USERS.alice)).refresh_token]
      for (let i = 0; i < 40; i++) tokens.push((await refresh(app, tokens.at(-1) ?? '')).json().refresh_token)
      return tokens // tokens[40] is live, tokens[8..39] are the last 32 spent
    }
    const ended = await chain()
    t.equal((await logout(app, ended[8] ?? '')).statusCode, 204)
    t.equal((await refresh(app, ended[40] ?? '')).statusCode, 401, '32 back: the session is ended')
    const kept = await chain()
    t.equal((await logout(app, kept[7] ?? '')).statusCode, 204)
    t.equal((await refresh(app, kept[40] ?? '')).statusCode, 200, '33 back: the session lives on')
  })

  t.test('a login beyond SESSIONS_PER_USER_MAX ends the account\'s oldest session', async (t) => {
    const { stream, records } = logCapture()
    const { app } = await buildTestApp(t, store, { SESSIONS_PER_USER_MAX: '3', LOG_LEVEL: 'info' }, { logStream: stream })
    const sessions = []
    for (let i = 0; i < 4; i++) sessions.push(await loginTokens(app, USERS.alice))
    const [oldest, ...rest] = sessions
    t.equal((await profile(app, bearer(oldest?.access_token ?? ''))).statusCode, 401, 'the oldest session\'s access token is denied at once')
    t.equal((await refresh(app, oldest?.refresh_token ?? '')).statusCode, 401, 'and its refresh token is dead')
    for (const s of rest) t.equal((await profile(app, bearer(s.access_token))).statusCode, 200, 'the three newest live on')
    t.equal((await profile(app, bearer((await loginTokens(app, USERS.root)).access_token))).statusCode, 200, 'another account is counted apart')
    const logins = records().filter(line => line.event === 'login_succeeded' && line.userId === oldest?.refresh_token.split('.')[0])
    t.same(logins.map(line => line.endedSessionIds), [undefined, undefined, undefined, [oldest?.refresh_token.split('.')[1]]], 'the fourth login\'s audit line names the session it ended')
  })
}

for (const store of STORE_KINDS) t.test(`${store} store`, t => suite(t, store))
