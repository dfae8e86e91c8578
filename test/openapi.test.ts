import t from 'tap'
import { loadConfig } from '../src/config.js'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens } from './helpers/http.js'

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
    bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token from /auth/login or /auth/refresh' },
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
  const root = await loginTokens(app, USERS.root)
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase() as 'GET' | 'POST', operation })))
  t.ok(operations.length >= 7, `${operations.length} operations documented`)
  for (const { path, method, operation } of operations) {
    const anonymous = await app.inject({ method, url: path })
    if (operation.security !== undefined) {
      t.same(operation.security, [{ bearerAuth: [] }, { cookieAuth: [] }], `${method} ${path}: either transport`)
      t.equal(anonymous.statusCode, 401, `${method} ${path}: documented as protected, and it is`)
      t.equal(anonymous.headers['www-authenticate'], 'Bearer', `${method} ${path}: with the access-token challenge`)
      const authorized = await app.inject({ method, url: path, headers: bearer(root.access_token) })
      t.equal(authorized.statusCode, 200, `${method} ${path}: a token opens it`)
    } else {
      // Open to anyone without an access token (refresh may still want its own refresh token).
      t.equal(anonymous.headers['www-authenticate'], undefined, `${method} ${path}: documented as open, and no access token is demanded (${anonymous.statusCode})`)
    }
  }
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
