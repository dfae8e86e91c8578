import { readFileSync } from 'node:fs'
import SwaggerParser from '@apidevtools/swagger-parser'
import t from 'tap'
import { Profile } from '../schemas/api.js'
import { ref } from '../schemas/common.js'
import { loadConfig } from '../src/config.js'
import { renderOpenApi } from '../src/openapi.js'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens } from './helpers/http.js'
import { API_AUDIENCE, TestOidcProvider, providersFile } from './helpers/oidc-provider.js'
import { expiredCopy } from './helpers/tokens.js'

interface Operation { security?: Array<Record<string, string[]>> }
interface OpenApiDocument {
  openapi: string
  info: { version: string }
  components: { securitySchemes: Record<string, unknown> }
  paths: Record<string, Record<string, Operation>>
}

t.test('the OpenAPI document: 3.1, both security schemes, served as JSON and YAML', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const response = await app.inject({ url: '/docs/json' })
  t.equal(response.statusCode, 200)
  const document = response.json<OpenApiDocument>()
  t.equal(document.openapi, '3.1.0')
  t.equal(document.info.version, '0.1.0', 'the version is package.json\'s')
  t.same(document.components.securitySchemes, {
    bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token from /auth/login, /auth/refresh or a sign-in through a provider; or an access token of a provider OIDC_PROVIDERS_FILE trusts with an `audience` (routes about sessions need one of this API\'s)' },
    cookieAuth: { type: 'apiKey', in: 'cookie', name: 'access_token', description: 'Cookie mode: set by /auth/login with `X-Auth-Mode: cookie`' },
  })
  t.ok('Error' in (document.components as { schemas?: Record<string, unknown> }).schemas!, 'shared schemas are components named by $id')
  t.notMatch(JSON.stringify(document), /def-\d/, 'no def-N names')
  const yaml = await app.inject({ url: '/docs/yaml' })
  t.equal(yaml.statusCode, 200)
  t.match(yaml.body, /^openapi: 3\.1\.0$/m)
  const ui = await app.inject({ url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /^text\/html/)
})

t.test('documentation and protection cannot drift: a route declares security exactly when it demands a token', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const document = (await app.inject({ url: '/docs/json' })).json<OpenApiDocument>()
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase() as 'GET' | 'POST' | 'DELETE', operation })))
  t.ok(operations.length >= 7, `${operations.length} operations documented`)
  for (const { path, method, operation } of operations) {
    const anonymous = await app.inject({ method, url: path })
    if (operation.security !== undefined) {
      t.same(operation.security, [{ bearerAuth: [] }, { cookieAuth: [] }], `${method} ${path}: either transport`)
      t.equal(anonymous.statusCode, 401, `${method} ${path}: documented as protected, and it is`)
      t.equal(anonymous.headers['www-authenticate'], 'Bearer', `${method} ${path}: with the access-token challenge`)
      // A session of its own each time: some of these end it. A path parameter is a literal "{id}".
      const root = await loginTokens(app, USERS.root)
      const authorized = await app.inject({ method, url: path.replace('{id}', 'no-such-id'), headers: bearer(root.access_token) })
      // A password change without its body is a 400: past authentication all the same.
      const opened = path === '/auth/sessions/{id}' ? 404 : path === '/auth/password' ? 400 : method === 'GET' ? 200 : 204
      t.equal(authorized.statusCode, opened, `${method} ${path}: a token opens it (${opened})`)
    } else {
      // Open to anyone without an access token (refresh may still want its own refresh token).
      t.equal(anonymous.headers['www-authenticate'], undefined, `${method} ${path}: documented as open, and no access token is demanded (${anonymous.statusCode})`)
    }
  }
})

t.test('openapi.yaml is what the app serves, and a valid OpenAPI document', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const served = (await app.inject({ url: '/docs/yaml' })).body
  const checkedIn = readFileSync('openapi.yaml', 'utf8')
  t.equal(checkedIn, served, 'openapi.yaml is stale: run `npm run openapi` and commit it')
  t.equal(await renderOpenApi(), checkedIn, 'npm run openapi writes the same document')
  const parsed = await SwaggerParser.validate('openapi.yaml') as { paths: Record<string, unknown> }
  t.same(Object.keys(parsed.paths).sort(), ['/.well-known/jwks.json', '/api/admin', '/api/admin/users/{id}/sessions', '/api/profile', '/auth/login', '/auth/logout', '/auth/logout-all', '/auth/oidc/{name}/callback', '/auth/oidc/{name}/start', '/auth/oidc/{name}/token', '/auth/password', '/auth/refresh', '/auth/revoke', '/auth/sessions', '/auth/sessions/{id}', '/health', '/ready'])
})

t.test('every operation is documented for a client developer', async (t) => {
  const document = await SwaggerParser.parse('openapi.yaml') as unknown as { paths: Record<string, Record<string, Record<string, unknown> & { responses: Record<string, { description: string }> }>> }
  const operationIds = new Set<string>()
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      t.type(operation.operationId, 'string', `${name}: operationId`)
      operationIds.add(String(operation.operationId))
      t.type(operation.summary, 'string', `${name}: summary`)
      t.type(operation.description, 'string', `${name}: description`)
      t.equal((operation.tags as string[]).length, 1, `${name}: a tag`)
      for (const [status, response] of Object.entries(operation.responses)) {
        t.not(response.description, 'Default Response', `${name} ${status}: described`)
      }
    }
  }
  const operationCount = Object.values(document.paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0)
  t.equal(operationIds.size, operationCount, `operationIds are unique (${operationCount} operations)`)
  const login = document.paths['/auth/login']?.post as unknown as { parameters: Array<{ in: string, name: string }> }
  t.ok(login.parameters.some(p => p.in === 'header' && p.name === 'x-auth-mode'), 'X-Auth-Mode is documented on login')
  const bodyRequired = (path: string) => (document.paths[path]?.post as unknown as { requestBody: { required: boolean } }).requestBody.required
  t.equal(bodyRequired('/auth/login'), true, 'login needs its body')
  t.equal(bodyRequired('/auth/refresh'), false, 'refresh may come with no body (cookie mode)')
  t.equal(bodyRequired('/auth/logout'), false, 'so may logout')
  const refreshOperation = document.paths['/auth/refresh']?.post as unknown as { parameters: Array<{ in: string, name: string }> }
  t.ok(refreshOperation.parameters.some(p => p.in === 'cookie' && p.name === 'refresh_token'), 'the refresh cookie is documented on refresh')
})

t.test('response schemas serialize: a field not in the schema never leaves, not even a password hash', async (t) => {
  // A later route that returns the whole stored record, hash included, as a careless change might.
  let returned: Record<string, unknown> | null = null
  const { app } = await buildTestApp(t, 'memory', {}, {
    later: (scope) => {
      scope.get('/api/careless-profile', scope.secured({ response: { 200: ref(Profile, { description: 'The user' }) } }), async (request) => {
        returned = await scope.store.getUser(request.user.id) as Record<string, unknown> | null
        return returned
      })
    },
  })
  const tokens = await loginTokens(app, USERS.alice)
  const response = await app.inject({ url: '/api/careless-profile', headers: bearer(tokens.access_token) })
  t.equal(response.statusCode, 200)
  t.match(returned, { passwordHash: /^\$argon2id/ }, 'the handler did return the record with its hash')
  t.same(Object.keys(response.json()).sort(), ['email', 'id', 'roles', 'username'])
  t.notMatch(response.body, /argon2|passwordHash/)
  const real = await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) })
  t.same(Object.keys(real.json()).sort(), ['email', 'id', 'roles', 'username'], 'the real /api/profile: the same fields, no more')
})

t.test('DOCS_ENABLED=false, and production by default, serve no documentation', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { DOCS_ENABLED: 'false' })
  t.equal((await app.inject({ url: '/docs' })).statusCode, 404)
  t.equal((await app.inject({ url: '/docs/json' })).statusCode, 404)
  const production = { NODE_ENV: 'production', JWT_SECRET: TEST_SECRET, REDIS_URL: 'redis://127.0.0.1:6379' }
  t.equal(loadConfig(production).docsEnabled, false, 'production: off by default')
  t.equal(loadConfig({ ...production, DOCS_ENABLED: 'true' }).docsEnabled, true, 'unless DOCS_ENABLED=true')
  t.equal(loadConfig({}).docsEnabled, true, 'development: on')
})

t.test('every documented error example is what the API really answers', async (t) => {
  // A trusted provider: its access tokens (routes about our sessions refuse them) and sign-in through it.
  const auth0 = await TestOidcProvider.start('auth0', { redirectUris: ['http://127.0.0.1/auth/oidc/auth0/callback'] })
  t.teardown(() => auth0.stop())
  const providers = providersFile([{ name: 'auth0', issuer: auth0.issuer, audience: API_AUDIENCE, clientId: 'web', clientSecret: 'web-secret' }])
  const { app, config } = await buildTestApp(t, 'memory', { RATE_LIMIT_LOGIN_MAX: '1', CORS_ORIGINS: 'https://app.example.com', OIDC_PROVIDERS_FILE: providers, PUBLIC_ORIGIN: 'http://127.0.0.1' })
  const externalToken = await auth0.mint({ sub: 'someone', aud: API_AUDIENCE })
  /** A sign-in whose callback brings a code the provider never issued. */
  const forgedCallback = async () => {
    const started = await app.inject({ url: '/auth/oidc/auth0/start' })
    const back = await auth0.signIn(started.headers.location ?? '', 'someone')
    back.searchParams.set('code', 'forged')
    return await app.inject({ url: `${back.pathname}${back.search}`, cookies: { oidc_state: started.cookies.find(c => c.name === 'oidc_state')?.value ?? '' } })
  }
  const document = (await app.inject({ url: '/docs/json' })).json<{ paths: Record<string, Record<string, { operationId: string, responses: Record<string, { headers?: Record<string, unknown>, content?: Record<string, { example?: Record<string, unknown>, examples?: Record<string, { value: Record<string, unknown> }> }> }> }>> }>()
  const alice = await loginTokens(app, USERS.alice)
  const cookieLogin = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.2', headers: { 'x-auth-mode': 'cookie' }, payload: { username: USERS.root.username, password: USERS.root.password } })
  const refreshCookie = String(cookieLogin.cookies.find(c => c.name === 'refresh_token')?.value)
  const accessCookie = String(cookieLogin.cookies.find(c => c.name === 'access_token')?.value)
  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) => ({ method: 'POST' as const, url, payload: payload as string, headers })
  const json = { 'content-type': 'application/json' }
  // One real request per documented error, each from its own client address unless it must share one.
  const requests: Record<string, () => Promise<{ statusCode: number, headers: Record<string, unknown>, json: () => Record<string, unknown> }>> = {
    'login 400': () => app.inject(post('/auth/login', '[]', json)),
    'login 401': () => app.inject({ ...post('/auth/login', { username: 'alice', password: 'wrong' }), remoteAddress: '192.0.2.3' }),
    'login 413': () => app.inject(post('/auth/login', JSON.stringify({ username: 'a', password: 'x'.repeat(20_000) }), json)),
    'login 415': () => app.inject(post('/auth/login', 'x', { 'content-type': 'text/plain' })),
    'login 429': () => app.inject(post('/auth/login', { username: 'alice', password: 'wrong' })), // alice's second attempt from 127.0.0.1
    'refresh 400': () => app.inject(post('/auth/refresh', '[]', json)),
    'refresh 401': () => app.inject(post('/auth/refresh', { refresh_token: 'spent.or.garbage' })),
    'refresh 403': () => app.inject(post('/auth/refresh', {}, { cookie: `refresh_token=${refreshCookie}`, origin: 'https://evil.example.com' })),
    'logout 400': () => app.inject(post('/auth/logout', '[]', json)),
    'logout 403': () => app.inject(post('/auth/logout', {}, { cookie: `refresh_token=${refreshCookie}`, origin: 'https://evil.example.com' })),
    'getProfile 401 INVALID_ACCESS_TOKEN': () => app.inject({ url: '/api/profile' }),
    'getProfile 401 ACCESS_TOKEN_EXPIRED': () => app.inject({ url: '/api/profile', headers: bearer(expiredCopy(alice.access_token, config.accessTokenTtl)) }),
    'getAdminArea 401 INVALID_ACCESS_TOKEN': () => app.inject({ url: '/api/admin' }),
    'getAdminArea 401 ACCESS_TOKEN_EXPIRED': () => app.inject({ url: '/api/admin', headers: bearer(expiredCopy(alice.access_token, config.accessTokenTtl)) }),
    'getAdminArea 403': () => app.inject({ url: '/api/admin', headers: bearer(alice.access_token) }),
    'getJwks 404': () => app.inject({ url: '/.well-known/jwks.json' }),
    'revokeToken 400': () => app.inject(post('/auth/revoke', { token_type_hint: 'refresh_token' })),
    'changePassword 400': () => app.inject({ method: 'POST', url: '/auth/password', headers: bearer(alice.access_token), payload: { current_password: 'x', new_password: 'short' } }),
    'changePassword 403': () => app.inject({ method: 'POST', url: '/auth/password', remoteAddress: '192.0.2.9', headers: bearer(alice.access_token), payload: { current_password: 'wrong', new_password: 'a long enough passphrase' } }),
    ...Object.fromEntries([['listSessions', 'GET', '/auth/sessions'], ['endSession', 'DELETE', '/auth/sessions/x'], ['logoutAll', 'POST', '/auth/logout-all'], ['changePassword', 'POST', '/auth/password'], ['listUserSessions', 'GET', '/api/admin/users/x/sessions'], ['endUserSessions', 'DELETE', '/api/admin/users/x/sessions']].flatMap(([id, method, url]) => [
      [`${id} 401 INVALID_ACCESS_TOKEN`, () => app.inject({ method: method as 'GET', url })],
      [`${id} 401 ACCESS_TOKEN_EXPIRED`, () => app.inject({ method: method as 'GET', url, headers: bearer(expiredCopy(alice.access_token, config.accessTokenTtl)) })],
    ])),
    'listSessions 403': () => app.inject({ url: '/auth/sessions', headers: bearer(externalToken) }),
    'oidcSignInStart 400': () => app.inject({ url: '/auth/oidc/auth0/start?return_to=https%3A%2F%2Fevil.example%2F' }),
    'oidcSignInStart 404': () => app.inject({ url: '/auth/oidc/nope/start' }),
    'oidcSignInCallback 400': () => app.inject({ url: '/auth/oidc/auth0/callback?code=x' }),
    'oidcSignInCallback 401': forgedCallback,
    'oidcSignInCallback 404': () => app.inject({ url: '/auth/oidc/nope/callback' }),
    // Exchanges count under the login limit (1 here), per client IP: one address each.
    'oidcTokenExchange 400': () => app.inject({ ...post('/auth/oidc/auth0/token', '[]', json), remoteAddress: '192.0.2.20' }),
    'oidcTokenExchange 401': () => app.inject({ ...post('/auth/oidc/auth0/token', { id_token: 'not.a.token' }), remoteAddress: '192.0.2.21' }),
    'oidcTokenExchange 404': () => app.inject({ ...post('/auth/oidc/nope/token', { id_token: 'x' }), remoteAddress: '192.0.2.22' }),
    'endSession 403': () => app.inject({ method: 'DELETE', url: '/auth/sessions/x', headers: { cookie: `access_token=${accessCookie}`, origin: 'https://evil.example.com' } }),
    'endSession 404': () => app.inject({ method: 'DELETE', url: '/auth/sessions/x', headers: bearer(alice.access_token) }),
    'logoutAll 403': () => app.inject({ method: 'POST', url: '/auth/logout-all', headers: { cookie: `access_token=${accessCookie}`, origin: 'https://evil.example.com' } }),
    'listUserSessions 403': () => app.inject({ url: '/api/admin/users/x/sessions', headers: bearer(alice.access_token) }),
    'endUserSessions 403': () => app.inject({ method: 'DELETE', url: '/api/admin/users/x/sessions', headers: bearer(alice.access_token) }),
  }
  // Not reproducible without an outage (test/outage.test.ts) or a limit on every route: same body everywhere.
  const elsewhere = new Set(['503', '429', '413', '415'])

  let checked = 0
  for (const methods of Object.values(document.paths)) {
    for (const operation of Object.values(methods)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue
        const media = response.content?.['application/json']
        // One example, or several named by their code (a 401 that means "refresh" or "sign in").
        const examples: Array<[string, Record<string, unknown> | undefined]> = media?.examples === undefined
          ? [[`${operation.operationId} ${status}`, media?.example]]
          : Object.entries(media.examples).map(([name, { value }]) => [`${operation.operationId} ${status} ${name}`, value])
        for (const [name, example] of examples) {
          t.ok(example !== undefined, `${name}: has an example`)
          t.equal(example?.statusCode, Number(status), `${name}: the example's statusCode`)
          const send = requests[name]
          if (send === undefined) {
            t.ok(elsewhere.has(status), `${name}: reproduced here or one of the statuses whose body is the same on every route`)
            continue
          }
          const real = await send()
          t.equal(real.statusCode, Number(status), `${name}: the request produces it`)
          t.same(real.json(), example, `${name}: the documented example is the real body`)
          // The challenge is documented exactly where it is sent.
          t.equal('www-authenticate' in (response.headers ?? {}), real.headers['www-authenticate'] !== undefined, `${name}: WWW-Authenticate documented if and only if sent`)
          checked++
        }
      }
    }
  }
  t.equal(checked, Object.keys(requests).length, 'every request in the table was used')
})
