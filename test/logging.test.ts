import t from 'tap'
import { pino } from 'pino'
import { REDACTED, loggerOptions, withoutSecrets } from '../src/logger.js'
import { STORE_KINDS, TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, setCookies } from './helpers/http.js'
import { logCapture } from './helpers/log.js'

for (const store of STORE_KINDS) {
  t.test(`${store} store: no token, cookie, password or secret reaches the log, at any level`, async (t) => {
    const { stream, lines } = logCapture()
    const { app } = await buildTestApp(t, store, { LOG_LEVEL: 'trace' }, { logStream: stream })
    const secrets: string[] = [USERS.alice.password, USERS.root.password, TEST_SECRET, '$argon2id$']

    const body = await loginTokens(app, USERS.alice)
    secrets.push(body.access_token, body.refresh_token)
    const cookieLogin = await login(app, USERS.root.username, USERS.root.password, { 'x-auth-mode': 'cookie' })
    const cookies = setCookies(cookieLogin)
    const cookieAccess = String(cookies.get('access_token')?.value)
    const cookieRefresh = String(cookies.get('refresh_token')?.value)
    secrets.push(cookieAccess, cookieRefresh)

    await app.inject({ url: '/api/profile', headers: bearer(body.access_token) })
    await app.inject({ url: '/api/admin', headers: { cookie: `access_token=${cookieAccess}` } })
    await app.inject({ url: '/api/admin', headers: bearer(body.access_token) })
    const rotated = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: body.refresh_token } })).json()
    secrets.push(rotated.access_token, rotated.refresh_token)
    const rotatedAgain = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refresh_token } })).json()
    secrets.push(rotatedAgain.access_token, rotatedAgain.refresh_token)
    await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: body.refresh_token } }) // reuse: its successor is spent
    const cookieRefreshed = setCookies(await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: cookieRefresh } }))
    secrets.push(String(cookieRefreshed.get('refresh_token')?.value), String(cookieRefreshed.get('access_token')?.value))
    await login(app, USERS.alice.username, 'wrong-password-in-a-log?')
    secrets.push('wrong-password-in-a-log?')
    await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"username":"alice","password":"${USERS.alice.password}"` })
    await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 12345678901 } })
    await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${rotated.access_token}`, cookie: `refresh_token=${cookieRefresh}` } })
    await app.close()

    t.ok(lines.length > 20, `the log was written (${lines.length} lines)`)
    t.ok(lines.some(line => line.includes('"url":"/auth/login"')), 'requests are logged')
    t.ok(lines.some(line => line.includes('"event":"refresh_token_reused"') && line.includes('"sessionId"')), 'refresh-token reuse is logged with its session')
    for (const secret of secrets) {
      const leaks = lines.filter(line => line.includes(secret))
      t.same(leaks, [], `never logged: ${secret.slice(0, 12)}…`)
    }
  })
}

t.test('withoutSecrets: secret keys censored at any case and nesting the log could carry, the caller\'s objects untouched', async (t) => {
  const body = { username: 'alice', password: 'p', nested: { Authorization: 'Bearer x', list: [{ refresh_token: 'r' }, 'plain'] } }
  const line = { msg: 'careless', body, headers: { cookie: 'c', 'set-cookie': ['s'], host: 'h' }, accessToken: 'a', count: 3 }
  const clean = withoutSecrets(line)
  t.same(clean, {
    msg: 'careless',
    body: { username: 'alice', password: REDACTED, nested: { Authorization: REDACTED, list: [{ refresh_token: REDACTED }, 'plain'] } },
    headers: { cookie: REDACTED, 'set-cookie': REDACTED, host: 'h' },
    accessToken: REDACTED,
    count: 3,
  })
  t.equal(body.password, 'p', 'the logged object itself keeps its value')
  t.same(body.nested.list[0], { refresh_token: 'r' })
  const untouched = { msg: 'fine', userId: 'u', sessionIds: ['s1'] }
  t.equal(withoutSecrets(untouched), untouched, 'a line without secrets is not copied')
  class Account { password = 'p'; name = 'n' }
  const instance = new Account()
  t.equal(withoutSecrets({ req: instance }).req, instance, 'req, res and err are left to their serializers')
  t.same(withoutSecrets({ user: instance }).user, { password: REDACTED, name: 'n' }, 'any object is censored as JSON would write it')
  t.equal(instance.password, 'p')
})

t.test('the logger censors errors\' own properties too', async (t) => {
  const { stream, lines } = logCapture()
  const options = loggerOptions('info', stream)
  const logger = pino(options, options.stream)
  const err = Object.assign(new Error('boom'), { password: 'err-secret', detail: { accessToken: 'err-token' } })
  logger.child({ reqId: 'r-1' }).error({ err }, 'failed')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(lines.length, 1)
  t.notMatch(lines[0], /err-secret|err-token/, 'no secret in the line')
  t.match(JSON.parse(lines[0] ?? '{}'), { reqId: 'r-1', err: { message: 'boom', password: REDACTED, detail: { accessToken: REDACTED } } })
})

t.test('a completed request\'s access line is, byte for byte, the line pino writes through the request\'s logger', async (t) => {
  const { stream, lines } = logCapture()
  const { app } = await buildTestApp(t, 'memory', { LOG_LEVEL: 'info' }, { logStream: stream })
  // Characters JSON must escape, in the fields a client chooses.
  const url = '/health?q="quoted"\\back\u00e9'
  const host = 'api.example"\\.test'
  t.equal((await app.inject({ url, headers: { host }, remoteAddress: '203.0.113.7' })).statusCode, 200)
  const written = lines.find(line => line.includes('"msg":"request completed"'))
  const record = JSON.parse(written ?? '{}') as { reqId: string, responseTime: number, req: { url: string } }
  t.equal(record.req.url, '/health?q=%22quoted%22\\back%C3%A9', 'the URL as it reached the server')

  const expected = logCapture()
  const options = loggerOptions('info', expected.stream)
  const logger = pino(options, options.stream).child({ reqId: record.reqId })
  logger.info({ req: { method: 'GET', url: record.req.url, host, ip: '203.0.113.7' }, res: { statusCode: 200 }, responseTime: record.responseTime }, 'request completed')
  await new Promise(resolve => setImmediate(resolve))
  const withoutTime = (line: string | undefined) => line?.replace(/"time":\d+,/, '')
  t.equal(withoutTime(written), withoutTime(expected.lines[0]), 'the same fields, order, escaping and numbers')

  const quiet = logCapture()
  const { app: warnOnly } = await buildTestApp(t, 'memory', { LOG_LEVEL: 'warn' }, { logStream: quiet.stream })
  await warnOnly.inject('/health')
  t.same(quiet.lines.filter(line => line.includes('"url":"/health"')), [], 'nothing below the configured level')
})
