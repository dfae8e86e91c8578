import t, { type Test } from 'tap'
import { STORE_KINDS, USERS, buildTestApp, type StoreKind } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh, setCookies } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { keysUnder, withRedis } from './helpers/redis.js'
import { claimsOf } from './helpers/tokens.js'
import { openSuccessor } from '../src/tokens/successor-seal.js'

const jti = (accessToken: string) => JSON.parse(Buffer.from(String(accessToken.split('.')[1]), 'base64url').toString()).jti as string

async function suite (t: Test, store: StoreKind) {
  t.test('20 concurrent refreshes with one token: one rotation, one successor, all 200', async (t) => {
    const { stream, records } = logCapture()
    const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'info' }, { logStream: stream })
    const tokens = await loginTokens(app, USERS.alice)
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(app, tokens.refresh_token)))
    t.same([...new Set(answers.map(a => a.statusCode))], [200], 'all 200')
    const successors = new Set(answers.map(a => a.json().refresh_token))
    t.equal(successors.size, 1, 'one successor in every answer')
    t.equal(new Set(answers.map(a => jti(a.json().access_token))).size, 20, 'each with an access token of its own')
    for (const answer of answers.slice(0, 3)) t.equal((await profile(app, bearer(answer.json().access_token))).statusCode, 200, 'which works')
    const events = records().filter(line => line.event === 'token_refreshed' || line.event === 'refresh_replayed')
    t.same([events.filter(e => e.event === 'token_refreshed').length, events.filter(e => e.event === 'refresh_replayed').length], [1, 19], 'one rotation audited, 19 replays')
    t.match(events.find(e => e.event === 'refresh_replayed'), { level: 30, userId: tokens.refresh_token.split('.')[0], sessionId: tokens.refresh_token.split('.')[1] }, 'refresh_replayed at info, with the user and session')
    const [successor] = successors
    t.equal((await refresh(app, successor)).statusCode, 200, 'the successor rotates once, as any live token')
  })

  t.test('a replay inside the window after a completed refresh (a lost answer, retried) gets the same successor', async (t) => {
    const { app } = await buildTestApp(t, store)
    const tokens = await loginTokens(app, USERS.alice)
    const first = (await refresh(app, tokens.refresh_token)).json()
    const retried = await refresh(app, tokens.refresh_token)
    t.equal(retried.statusCode, 200)
    t.equal(retried.json().refresh_token, first.refresh_token, 'the same successor')
    t.not(retried.json().access_token, first.access_token, 'a fresh access token…')
    t.equal(claimsOf(retried.json().access_token).sid, claimsOf(first.access_token).sid, '…for the same session')
    t.equal((await profile(app, bearer(first.access_token))).statusCode, 200, 'the first answer\'s access token still works')
  })

  t.test('a replay after the window revokes the session', async (t) => {
    const { app } = await buildTestApp(t, store, { REFRESH_REUSE_GRACE: '1' })
    const tokens = await loginTokens(app, USERS.alice)
    const first = (await refresh(app, tokens.refresh_token)).json()
    await new Promise(resolve => setTimeout(resolve, 1200))
    const late = await refresh(app, tokens.refresh_token)
    t.equal(late.statusCode, 401)
    t.equal(late.json().code, 'INVALID_REFRESH_TOKEN')
    t.equal((await refresh(app, first.refresh_token)).statusCode, 401, 'the successor is dead: theft detection as before')
    t.equal((await profile(app, bearer(first.access_token))).statusCode, 401, 'and so is every access token of the session')
  })

  t.test('a replay after the successor was spent revokes the session', async (t) => {
    const { app } = await buildTestApp(t, store)
    const tokens = await loginTokens(app, USERS.alice)
    const first = (await refresh(app, tokens.refresh_token)).json()
    const second = (await refresh(app, first.refresh_token)).json()
    t.equal((await refresh(app, tokens.refresh_token)).statusCode, 401, 'the first token after its successor rotated')
    t.equal((await refresh(app, second.refresh_token)).statusCode, 401, 'the session is revoked')
  })

  t.test('strict mode (REFRESH_REUSE_GRACE=0): of 20 concurrent refreshes one wins and the session is revoked', async (t) => {
    const { app } = await buildTestApp(t, store, { REFRESH_REUSE_GRACE: '0' })
    const tokens = await loginTokens(app, USERS.alice)
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(app, tokens.refresh_token)))
    const winners = answers.filter(a => a.statusCode === 200)
    t.equal(winners.length, 1)
    t.equal((await refresh(app, winners[0]?.json().refresh_token)).statusCode, 401, 'reuse revoked the session, winner included')
  })

  t.test('cookie transport: concurrent cookie refreshes all get the same rotated cookie', async (t) => {
    const { app } = await buildTestApp(t, store)
    const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { username: USERS.alice.username, password: USERS.alice.password } })
    const cookie = `refresh_token=${setCookies(login).get('refresh_token')?.value ?? ''}`
    const answers = await Promise.all(Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } })))
    t.same([...new Set(answers.map(a => a.statusCode))], [200])
    const rotated = new Set(answers.map(a => setCookies(a).get('refresh_token')?.value))
    t.equal(rotated.size, 1, 'one refresh cookie for all five')
    t.notOk(answers.some(a => a.json().refresh_token !== undefined), 'never in a body')
    for (const a of answers) t.equal(setCookies(a).get('refresh_token')?.attributes.path, '/auth')
  })
}

for (const store of STORE_KINDS) t.test(`${store} store`, t => suite(t, store))

t.test('a dump of every Redis key after a rotation holds nothing that refreshes', async (t) => {
  const { app, config } = await buildTestApp(t, 'redis')
  const tokens = await loginTokens(app, USERS.alice)
  const successor = (await refresh(app, tokens.refresh_token)).json().refresh_token as string
  const values = await withRedis(String(config.redisUrl), async (redis) => {
    const found: string[] = []
    for (const key of await keysUnder(redis, config.redisKeyPrefix)) {
      found.push(key)
      const type = await redis.type(key)
      if (type === 'string') found.push(String(await redis.get(key)))
      else if (type === 'hash') found.push(...Object.entries(await redis.hgetall(key)).flat())
      else if (type === 'list') found.push(...await redis.lrange(key, 0, -1))
      else if (type === 'zset') found.push(...await redis.zrange(key, '0', '-1'))
      else throw new Error(`${key}: a key of type ${type} this dump cannot read (teach it)`)
    }
    return found
  })
  const pieces = [...new Set(values.flatMap(value => [value, ...value.split(/[|:{}]/)]))].filter(piece => piece.length > 0)
  const sealed = values.find(value => value.includes('|'))?.split('|')[2] ?? ''
  t.ok(sealed.length > 0, 'the replay record is there, with the sealed successor')
  const secret = successor.split('.')[2] ?? successor
  const decodings = pieces.flatMap(piece => [piece, Buffer.from(piece, 'base64url').toString('latin1'), Buffer.from(piece, 'hex').toString('latin1')])
  t.notOk(decodings.some(text => text.includes(secret) || text.includes(Buffer.from(secret, 'base64url').toString('latin1'))), 'the successor\'s secret is in no key or value, nor in any of them decoded')
  t.notOk(pieces.some(piece => openSuccessor(piece, sealed) !== null), 'no stored string opens the sealed successor')
  const refreshed = await Promise.all(pieces.map(async piece => (await refresh(app, piece)).statusCode))
  t.same([...new Set(refreshed)], [401], `none of ${pieces.length} stored strings refreshes`)
  t.equal((await refresh(app, successor)).statusCode, 200, 'and the session was not revoked by trying them')
})

t.test('production refuses a grace window over 300 s', async (t) => {
  const { loadConfig } = await import('../src/config.js')
  const production = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', JWT_SECRET: 'k'.repeat(32) }
  t.throws(() => loadConfig({ ...production, REFRESH_REUSE_GRACE: '301' }), { name: 'ConfigError', message: /REFRESH_REUSE_GRACE=301 is longer than production allows \(300 s\)/ })
  t.equal(loadConfig({ ...production, REFRESH_REUSE_GRACE: '300' }).refreshReuseGrace, 300)
  t.equal(loadConfig({}).refreshReuseGrace, 30, 'default 30 s')
  t.equal(loadConfig({ REFRESH_REUSE_GRACE: '0' }).refreshReuseGrace, 0, '0: strict')
})
