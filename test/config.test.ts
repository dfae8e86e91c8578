import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError, MIN_SECRET_BYTES, loadConfig } from '../src/config.js'
import { freePort } from './helpers/redis.js'

/** Sets process.env variables for one test and restores them after it. */
function withProcessEnv (t: Test, values: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(values).map(name => [name, process.env[name]]))
  Object.assign(process.env, values)
  t.teardown(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })
}

t.test('only the environment given is read, never process.env beneath it', async (t) => {
  withProcessEnv(t, { PORT: '4000', REDIS_URL: 'redis://leak.example:1', LOG_LEVEL: 'trace' })
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.redisUrl, undefined)
  t.equal(config.logLevel, 'info')
})

t.test('empty variables in the process environment count as unset', async (t) => {
  withProcessEnv(t, { PORT: '', REDIS_URL: '', JWT_SECRET: '', NODE_ENV: '' })
  const config = loadConfig()
  t.equal(config.port, 3000)
  t.equal(config.redisUrl, undefined)
  t.equal(config.jwt.secretGenerated, true)
})

/** 32 bytes exactly: the shortest secret production accepts. */
const SECRET_32 = 'k'.repeat(MIN_SECRET_BYTES)
const PRODUCTION = { NODE_ENV: 'production', REDIS_URL: 'redis://redis.internal:6379', JWT_SECRET: SECRET_32 }

function refusal (environment: NodeJS.ProcessEnv): unknown {
  try {
    loadConfig(environment)
  } catch (err) {
    return err
  }
  return undefined
}

/** loadConfig refuses `environment` with a ConfigError whose message names `variable`. */
function refused (t: Test, environment: NodeJS.ProcessEnv, variable: string, what: string): string {
  const err = refusal(environment)
  t.ok(err instanceof ConfigError, `${what}: refused with a ConfigError`)
  const message = (err as Error | undefined)?.message ?? ''
  t.match(message, new RegExp(`\\b${variable}\\b`), `${what}: the message names ${variable}`)
  return message
}

t.test('defaults: nothing set is a working development configuration', async (t) => {
  const config = loadConfig({})
  t.equal(config.env, 'development')
  t.equal(config.isProduction, false)
  t.equal(config.port, 3000, 'PORT 3000')
  t.equal(config.host, '127.0.0.1', 'HOST 127.0.0.1')
  t.equal(config.accessTokenTtl, 900, 'ACCESS_TOKEN_TTL 900 s')
  t.equal(config.refreshTokenTtl, 604_800, 'REFRESH_TOKEN_TTL 604800 s')
  t.equal(config.sessionMaxAge, 2_592_000, 'SESSION_MAX_AGE 30 days')
  t.equal(config.redisUrl, undefined, 'no REDIS_URL: the in-memory store')
  t.equal(config.usersFile, undefined)
  t.equal(config.seedDemoUsers, true, 'demo users in development without USERS_FILE')
  t.same(config.corsOrigins, [], 'no CORS origins')
  t.same(config.trustProxy, [], 'no trusted proxies')
  t.equal(config.logLevel, 'info')
  t.same(config.rateLimit, { max: 1000, loginMax: 5, refreshMax: 60 })
  t.ok(config.jwt.issuer.length > 0 && config.jwt.audience.length > 0, 'issuer and audience are fixed strings')

  t.equal(config.jwt.secretGenerated, true, 'no JWT_SECRET: a random secret, flagged as generated')
  t.ok(Buffer.isBuffer(config.jwt.secret) && config.jwt.secret.length >= MIN_SECRET_BYTES, `the random secret has at least ${MIN_SECRET_BYTES} bytes`)
  t.notOk(loadConfig({}).jwt.secret.equals(config.jwt.secret), 'a new random secret per configuration')
})

t.test('given values are parsed and used', async (t) => {
  const config = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    ACCESS_TOKEN_TTL: '60',
    REFRESH_TOKEN_TTL: '61',
    JWT_SECRET: SECRET_32,
    LOG_LEVEL: 'warn',
    USERS_FILE: '/etc/token-auth/users.json',
  })
  t.equal(config.port, 8080, 'PORT is a number')
  t.equal(config.host, '0.0.0.0')
  t.equal(config.accessTokenTtl, 60)
  t.equal(config.refreshTokenTtl, 61, 'one second longer than the access token is enough')
  t.equal(config.jwt.secretGenerated, false)
  t.same(config.jwt.secret, Buffer.from(SECRET_32), 'the secret is JWT_SECRET, as bytes')
  t.equal(config.logLevel, 'warn')
  t.equal(config.usersFile, '/etc/token-auth/users.json')
  t.equal(config.seedDemoUsers, false, 'USERS_FILE replaces the demo users')
})

t.test('demo users: in development only, only without USERS_FILE', async (t) => {
  t.equal(loadConfig({ NODE_ENV: 'development' }).seedDemoUsers, true, 'development')
  t.equal(loadConfig({ NODE_ENV: 'test' }).seedDemoUsers, false, 'test')
  t.equal(loadConfig({ NODE_ENV: 'development', USERS_FILE: '/x.json' }).seedDemoUsers, false, 'development with USERS_FILE')
  t.equal(loadConfig(PRODUCTION).seedDemoUsers, false, 'production')
  t.equal(loadConfig({ ...PRODUCTION, USERS_FILE: '/x.json' }).seedDemoUsers, false, 'production with USERS_FILE')
})

t.test('empty strings are treated as unset', async (t) => {
  const config = loadConfig({
    NODE_ENV: '',
    PORT: '',
    HOST: '',
    REDIS_URL: '',
    REDIS_KEY_PREFIX: '',
    JWT_SECRET: '',
    ACCESS_TOKEN_TTL: '',
    REFRESH_TOKEN_TTL: '',
    USERS_FILE: '',
    CORS_ORIGINS: '',
    TRUST_PROXY: '',
    LOG_LEVEL: '',
    RATE_LIMIT_MAX: '',
  })
  t.equal(config.env, 'development')
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.redisUrl, undefined, 'REDIS_URL= means the in-memory store')
  t.equal(config.redisKeyPrefix, 'auth:')
  t.equal(config.jwt.secretGenerated, true, 'JWT_SECRET= means a generated secret, not a too-short one')
  t.equal(config.accessTokenTtl, 900)
  t.equal(config.refreshTokenTtl, 604_800)
  t.equal(config.usersFile, undefined)
  t.equal(config.seedDemoUsers, true)
  t.same(config.corsOrigins, [])
  t.same(config.trustProxy, [])
  t.equal(config.logLevel, 'info')
  t.equal(config.rateLimit.max, 1000)

  refused(t, { ...PRODUCTION, JWT_SECRET: '' }, 'JWT_SECRET', 'production with JWT_SECRET=')
  t.match(refusal({ ...PRODUCTION, JWT_SECRET: '' }), { message: /required/ }, 'JWT_SECRET= in production is reported as missing')
  refused(t, { ...PRODUCTION, REDIS_URL: '' }, 'REDIS_URL', 'production with REDIS_URL=')
})

t.test('production refuses every unsafe default', async (t) => {
  const config = loadConfig(PRODUCTION)
  t.equal(config.isProduction, true, 'a complete production environment starts')
  t.equal(config.redisUrl, PRODUCTION.REDIS_URL)
  t.equal(config.jwt.secretGenerated, false)

  const { JWT_SECRET: _secret, ...withoutSecret } = PRODUCTION
  const noSecret = refused(t, withoutSecret, 'JWT_SECRET', 'no JWT_SECRET')
  t.match(noSecret, /required/, 'no JWT_SECRET: said to be required')
  const { REDIS_URL: _url, ...withoutRedis } = PRODUCTION
  const noRedis = refused(t, withoutRedis, 'REDIS_URL', 'no REDIS_URL')
  t.match(noRedis, /required/, 'no REDIS_URL: said to be required')
  const nothing = refusal({ NODE_ENV: 'production' })
  t.ok(nothing instanceof ConfigError, 'production with nothing else set: refused')
  t.match((nothing as Error | undefined)?.message, /\b(?:REDIS_URL|JWT_SECRET)\b/, 'naming a missing variable')
})

t.test('REDIS_CLUSTER_NODES: production accepts it instead of REDIS_URL and refuses both; credentials and TLS have variables of their own', async (t) => {
  const { REDIS_URL: _url, ...withoutUrl } = PRODUCTION
  const cluster = { ...withoutUrl, REDIS_CLUSTER_NODES: 'redis-0.internal:6379, 10.0.0.12:7000,[fd00::5]:6380' }
  const config = loadConfig(cluster)
  t.equal(config.redisUrl, undefined)
  t.same(config.redisCluster, {
    nodes: [{ host: 'redis-0.internal', port: 6379 }, { host: '10.0.0.12', port: 7000 }, { host: 'fd00::5', port: 6380 }],
    username: undefined,
    password: undefined,
    tls: false,
  }, 'a production environment with a cluster and no REDIS_URL starts')
  t.same(loadConfig({ ...cluster, REDIS_CLUSTER_USERNAME: 'api', REDIS_CLUSTER_PASSWORD: 'pw-1', REDIS_CLUSTER_TLS: 'true' }).redisCluster,
    { ...config.redisCluster, username: 'api', password: 'pw-1', tls: true }, 'username, password and TLS')

  const both = refused(t, { ...PRODUCTION, REDIS_CLUSTER_NODES: 'redis-0.internal:6379' }, 'REDIS_CLUSTER_NODES', 'both set')
  t.match(both, /REDIS_URL/, 'both: names REDIS_URL too')
  refused(t, { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, 'REDIS_CLUSTER_NODES', 'both set outside production too')
  t.match(refused(t, withoutUrl, 'REDIS_URL', 'neither'), /REDIS_CLUSTER_NODES/, 'neither: the message names both ways')

  for (const entry of ['redis-0.internal', 'redis://redis-0.internal:6379', 'host:0', 'host:65536', '[not-ipv6]:6379', 'a b:6379', ',']) {
    refused(t, { REDIS_CLUSTER_NODES: entry }, 'REDIS_CLUSTER_NODES', `REDIS_CLUSTER_NODES=${entry}`)
  }
  const leaked = refused(t, { REDIS_CLUSTER_NODES: 'redis-0.internal:6379,admin:hunter2@redis-1.internal:6379' }, 'REDIS_CLUSTER_NODES', 'an entry with credentials')
  t.notMatch(leaked, 'hunter2', 'the message does not echo the password')
  t.match(leaked, /entry 2\b/, 'it names the entry by its place')
  t.match(leaked, /REDIS_CLUSTER_PASSWORD/, 'and says where credentials go')
  t.notMatch(refused(t, { REDIS_CLUSTER_NODES: 'hunter2' }, 'REDIS_CLUSTER_NODES', 'a stray secret'), 'hunter2', 'an entry is never echoed')
  refused(t, { REDIS_CLUSTER_PASSWORD: 'pw' }, 'REDIS_CLUSTER_PASSWORD', 'a cluster password without nodes')
  refused(t, { REDIS_CLUSTER_TLS: 'true' }, 'REDIS_CLUSTER_TLS', 'cluster TLS without nodes')
  refused(t, { REDIS_CLUSTER_NODES: 'h:1', REDIS_CLUSTER_USERNAME: 'api' }, 'REDIS_CLUSTER_USERNAME', 'a username without a password')
})

t.test('production refuses rate limits turned off; other environments allow it (benchmarks)', async (t) => {
  for (const name of ['RATE_LIMIT_MAX', 'RATE_LIMIT_LOGIN_MAX', 'RATE_LIMIT_REFRESH_MAX']) {
    const message = refused(t, { ...PRODUCTION, [name]: '0' }, name, `production with ${name}=0`)
    t.match(message, /turns rate limiting off/, `${name}=0: says why`)
    t.equal(loadConfig({ ...PRODUCTION, [name]: '1' }).isProduction, true, `production with ${name}=1 starts`)
    t.equal(loadConfig({ NODE_ENV: 'test', [name]: '0' }).isProduction, false, `${name}=0 outside production is allowed`)
  }
  t.same(loadConfig({ RATE_LIMIT_MAX: '0' }).rateLimit, { max: 0, loginMax: 5, refreshMax: 60 }, 'development: RATE_LIMIT_MAX=0 as given')
})

t.test('JWT_SECRET length is counted in bytes', async (t) => {
  const twoByteChar = 'é'
  t.equal(Buffer.byteLength(twoByteChar), 2)
  const exactly32 = twoByteChar.repeat(16)
  const config = loadConfig({ ...PRODUCTION, JWT_SECRET: exactly32 })
  t.equal(config.jwt.secret.length, 32, '16 two-byte characters are 32 bytes: accepted')
  t.same(config.jwt.secret, Buffer.from(exactly32, 'utf8'))

  const bytes31 = twoByteChar.repeat(15) + 'a'
  t.equal(Buffer.byteLength(bytes31), 31)
  const message = refused(t, { ...PRODUCTION, JWT_SECRET: bytes31 }, 'JWT_SECRET', '31 bytes (16 characters)')
  t.notMatch(message, bytes31, 'the message does not echo the secret')
  refused(t, { ...PRODUCTION, JWT_SECRET: 'k'.repeat(31) }, 'JWT_SECRET', '31 ASCII bytes')
  refused(t, { NODE_ENV: 'development', JWT_SECRET: 'short' }, 'JWT_SECRET', 'a given short secret in development too')
  t.equal(loadConfig({ ...PRODUCTION, JWT_SECRET: 'k'.repeat(32) }).jwt.secret.length, 32, '32 ASCII bytes: accepted')
})

t.test('invalid values are refused with a message naming the variable', async (t) => {
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '1.5'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['LOG_LEVEL', 'loud'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '-60'],
    ['ACCESS_TOKEN_TTL', 'fifteen minutes'],
    ['REFRESH_TOKEN_TTL', 'abc'],
    ['REDIS_URL', 'http://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['NODE_ENV', 'staging'],
    ['RATE_LIMIT_MAX', '-1'],
    ['RATE_LIMIT_LOGIN_MAX', 'many'],
    ['REDIS_KEY_PREFIX', 'has spaces'],
  ]
  for (const [variable, value] of cases) refused(t, { [variable]: value }, variable, `${variable}=${value}`)

  const message = refused(t, { REDIS_URL: 'http://admin:hunter2@redis.internal:6379' }, 'REDIS_URL', 'REDIS_URL with credentials and a wrong scheme')
  t.notMatch(message, 'hunter2', 'the message does not echo the password in the URL')
})

t.test('REFRESH_TOKEN_TTL must be longer than ACCESS_TOKEN_TTL', async (t) => {
  refused(t, { ACCESS_TOKEN_TTL: '600', REFRESH_TOKEN_TTL: '600' }, 'REFRESH_TOKEN_TTL', 'equal TTLs')
  refused(t, { ACCESS_TOKEN_TTL: '600', REFRESH_TOKEN_TTL: '300' }, 'REFRESH_TOKEN_TTL', 'refresh shorter than access')
  refused(t, { ACCESS_TOKEN_TTL: '604800' }, 'REFRESH_TOKEN_TTL', 'an access TTL equal to the default refresh TTL')
  t.equal(loadConfig({ ACCESS_TOKEN_TTL: '600', REFRESH_TOKEN_TTL: '601' }).refreshTokenTtl, 601, 'longer by one second: accepted')
})

t.test('SESSION_MAX_AGE must not be shorter than REFRESH_TOKEN_TTL', async (t) => {
  refused(t, { REFRESH_TOKEN_TTL: '7200', SESSION_MAX_AGE: '7199' }, 'SESSION_MAX_AGE', 'shorter')
  refused(t, { REFRESH_TOKEN_TTL: '2592001' }, 'SESSION_MAX_AGE', 'an idle timeout past the default bound')
  t.equal(loadConfig({ REFRESH_TOKEN_TTL: '7200', SESSION_MAX_AGE: '7200' }).sessionMaxAge, 7200, 'equal: accepted (no refresh extends a session)')
})

t.test('CORS_ORIGINS and TRUST_PROXY are comma-separated lists, trimmed', async (t) => {
  const config = loadConfig({
    CORS_ORIGINS: ' https://app.example.com ,https://admin.example.com,, ',
    TRUST_PROXY: '10.0.0.0/8 , 192.168.1.1/32,',
  })
  t.same(config.corsOrigins, ['https://app.example.com', 'https://admin.example.com'], 'CORS_ORIGINS: trimmed, empty items dropped')
  t.same(config.trustProxy, ['10.0.0.0/8', '192.168.1.1/32'], 'TRUST_PROXY: trimmed, empty items dropped')
  t.same(loadConfig({ CORS_ORIGINS: 'https://one.example' }).corsOrigins, ['https://one.example'], 'a single origin')
  t.same(loadConfig({ CORS_ORIGINS: ' , ' }).corsOrigins, [], 'only separators: no origins')
})

t.test('TRUST_PROXY is an allow-list of addresses, never a hop count or true', async (t) => {
  t.same(loadConfig({ TRUST_PROXY: '127.0.0.1,::1,10.0.0.0/8,fd00::/8,loopback,2001:db8::/32,::ffff:10.0.0.0/104,uniquelocal' }).trustProxy,
    ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8', 'loopback', '2001:db8::/32', '::ffff:10.0.0.0/104', 'uniquelocal'])
  for (const value of ['1', '2', 'true', '*', '10.0.0.0/33', '10.0.0.0/8/1', 'proxy.example.com', '::1/129', '0.0.0.0/0', '::/0', '1.2.3.4/0', 'constructor', '__proto__', '0.0.0.0/1', '128.0.0.0/7', '::/1', '::/80', '::ffff:0:0/96', '::ffff:10.0.0.0/100']) {
    refused(t, { TRUST_PROXY: value }, 'TRUST_PROXY', value)
  }
})

t.test('buildApp refuses a REDIS_URL that does not answer, quickly, without its password', async (t) => {
  const port = await freePort() // closed: nothing listens there
  const url = `redis://user:s3cret@127.0.0.1:${port}`
  const config = loadConfig({ NODE_ENV: 'production', REDIS_URL: url, JWT_SECRET: SECRET_32, LOG_LEVEL: 'trace' })
  const logs: string[] = []
  const started = performance.now()
  const err = await buildApp(config, { logStream: { write: (line: string) => { logs.push(line) } } }).then(
    async (app) => {
      await app.close()
      return undefined
    },
    (err: unknown) => err
  )
  const ms = performance.now() - started

  t.ok(err instanceof Error, 'buildApp rejects')
  const message = (err as Error | undefined)?.message ?? ''
  t.ok(message.startsWith('REDIS_URL'), `the message starts with REDIS_URL: ${JSON.stringify(message)}`)
  t.match(message, `127.0.0.1:${port}`, 'it says which Redis')
  t.notMatch(message, 's3cret', 'the message does not contain the password')
  t.notMatch(message, 'user:', 'nor the credentials at all')
  t.notMatch(String((err as Error | undefined)?.stack), 's3cret', 'nor does the stack')
  t.notMatch(logs.join(''), 's3cret', 'nor any log line')
  t.ok(ms < 5000, `rejected within 5 s (${Math.round(ms)} ms)`)
})

t.test('HTTP timeouts and connection bounds: safe defaults, in seconds, headers within the request', async (t) => {
  t.same(loadConfig({}).http, { headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, keepAliveTimeoutMs: 72_000, maxRequestsPerSocket: 0, maxConnections: 10_000 }, 'defaults')
  t.same(loadConfig({ HTTP_HEADERS_TIMEOUT: '5', HTTP_REQUEST_TIMEOUT: '5', HTTP_KEEP_ALIVE_TIMEOUT: '65', HTTP_MAX_REQUESTS_PER_SOCKET: '1000', HTTP_MAX_CONNECTIONS: '0' }).http,
    { headersTimeoutMs: 5000, requestTimeoutMs: 5000, keepAliveTimeoutMs: 65_000, maxRequestsPerSocket: 1000, maxConnections: 0 }, 'as given')
  t.match(refusal({ HTTP_HEADERS_TIMEOUT: '20', HTTP_REQUEST_TIMEOUT: '15' }), { name: 'ConfigError', message: /HTTP_HEADERS_TIMEOUT must not be longer than HTTP_REQUEST_TIMEOUT/ })
  for (const [name, value] of [['HTTP_REQUEST_TIMEOUT', '0'], ['HTTP_HEADERS_TIMEOUT', '0'], ['HTTP_KEEP_ALIVE_TIMEOUT', '0'], ['HTTP_MAX_CONNECTIONS', '-1'], ['HTTP_REQUEST_TIMEOUT', '1.5']] as const) {
    t.match(refusal({ [name]: value }), { name: 'ConfigError', message: new RegExp(name) }, `${name}=${value} refused`)
  }
})
