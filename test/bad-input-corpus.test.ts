import { request } from 'node:http'
import t, { type Test } from 'tap'
import { STORE_KINDS, buildTestApp, USERS, type StoreKind } from './helpers/app.js'
import { loginTokens, parseAnswers, rawExchange } from './helpers/http.js'
import { charChanged } from './helpers/bad-input.js'

/**
 * A generated corpus of hostile and broken requests, sent over real HTTP (duplicate header lines
 * and raw bytes are what a socket carries, not what inject builds). Every answer must come within
 * HANG_MS, never be a 5xx, be JSON when it is an error, and let nothing through.
 */
const HANG_MS = 5000

interface HttpCase {
  name: string
  method: string
  path: string
  headers?: Record<string, string | string[]>
  body?: string | Buffer
  /** a 2xx is acceptable (public routes, logout's 204, or a case that carries valid credentials) */
  mayPass?: boolean
}

interface Answer { status: number, contentType: string, body: string }

function send (port: number, c: HttpCase): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...c.headers, ...(c.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(c.body)) }) }
    const req = request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, timeout: HANG_MS }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString() }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${HANG_MS} ms`)))
    req.on('error', reject)
    req.end(c.body)
  })
}

/** Bytes no well-behaved client would send, written straight to a socket. */
async function sendRaw (port: number, bytes: Buffer): Promise<Answer> {
  const [answer] = parseAnswers(await rawExchange(port, bytes, HANG_MS))
  return { status: answer?.status ?? 0, contentType: answer?.headers['content-type'] ?? '', body: answer?.body ?? '' }
}

const POST_ROUTES = ['/auth/login', '/auth/refresh', '/auth/logout']
const PROTECTED = ['/api/profile', '/api/admin']

const BAD_VALUES: Record<string, string> = {
  null: 'null',
  zero: '0',
  negative: '-1',
  'huge number': '1e999',
  true: 'true',
  array: '["a"]',
  object: '{"a":1}',
  'empty string': '""',
  'null byte': '"a\\u0000b"',
  'lone surrogate': '"\\ud800"',
  emoji: JSON.stringify('😀'.repeat(40)),
  'right-to-left override': JSON.stringify('ad\u202emin'),
  'combining marks': JSON.stringify('a' + '\u0301'.repeat(200)),
  'sql-ish': JSON.stringify("' OR 1=1 --"),
  'path-ish': JSON.stringify('../../etc/passwd'),
  'template-ish': JSON.stringify('{{7*7}}' + '$' + '{7*7}'),
  'long string': JSON.stringify('x'.repeat(2000)),
  'control characters': JSON.stringify('\u0001\u0002\u001b[31m\r\n'),
}

const WHOLE_BODIES: Record<string, string | Buffer> = {
  'empty body': '',
  'JSON null': 'null',
  'JSON array': '[]',
  'JSON string': '"username"',
  'JSON number': '42',
  truncated: '{"username":"alice","password":"al',
  'trailing garbage': '{"username":"alice","password":"x"}}}',
  'duplicate keys': '{"username":"alice","username":"root","password":"x"}',
  __proto__: '{"__proto__":{"roles":["admin"]},"username":"alice","password":"x"}',
  'constructor.prototype': '{"constructor":{"prototype":{"roles":["admin"]}},"username":"alice","password":"x"}',
  'deeply nested arrays': '{"username":' + '['.repeat(7000) + ']'.repeat(7000) + ',"password":"x"}',
  'deeply nested objects': '{"username":"alice","password":"x","a":' + '{"a":'.repeat(2500) + '1' + '}'.repeat(2500) + '}',
  'many keys': '{' + Array.from({ length: 1200 }, (_, i) => `"k${i}":1`).join(',') + '}',
  'over the body limit': JSON.stringify({ username: 'alice', password: 'x'.repeat(20_000) }),
  'UTF-8 BOM': '\ufeff{"username":"alice","password":"x"}',
  'invalid UTF-8': Buffer.concat([Buffer.from('{"username":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('","password":"x"}')]),
  'UTF-16': Buffer.from('{"username":"alice","password":"x"}', 'utf16le'),
  'unquoted keys': '{username:"alice",password:"x"}',
  'single quotes': "{'username':'alice','password':'x'}",
  comments: '{"username":"alice",/*c*/"password":"x"}',
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/xml',
  'application/json-patch+json',
  'application/jsonx',
  '*/*',
  'garbage',
]

/** The browser client CORS_ORIGINS allows: preflights are part of the corpus. */
const SPA = 'https://app.example.com'

function cases (valid: { access: string, refresh: string }): HttpCase[] {
  const out: HttpCase[] = []
  const json = { 'content-type': 'application/json' }
  for (const path of POST_ROUTES) {
    const field = path === '/auth/login' ? 'username' : 'refresh_token'
    for (const [name, value] of Object.entries(BAD_VALUES)) {
      out.push({ name: `${path} ${field}: ${name}`, method: 'POST', path, headers: json, body: `{"${field}":${value},"password":"x"}`, mayPass: path === '/auth/logout' })
      if (path === '/auth/login') out.push({ name: `${path} password: ${name}`, method: 'POST', path, headers: json, body: `{"username":"alice","password":${value}}` })
    }
    for (const [name, body] of Object.entries(WHOLE_BODIES)) {
      out.push({ name: `${path} body: ${name}`, method: 'POST', path, headers: json, body, mayPass: path === '/auth/logout' })
    }
    for (const type of CONTENT_TYPES) {
      out.push({ name: `${path} content-type ${type}`, method: 'POST', path, headers: { 'content-type': type }, body: '{"username":"alice","password":"x"}', mayPass: path === '/auth/logout' })
    }
    out.push({ name: `${path} JSON without content-type`, method: 'POST', path, body: '{"username":"alice","password":"x"}', mayPass: path === '/auth/logout' })
    out.push({ name: `${path} two content-types`, method: 'POST', path, headers: { 'content-type': ['application/json', 'text/plain'] }, body: '{}', mayPass: path === '/auth/logout' })
    out.push({ name: `${path} x-auth-mode twice`, method: 'POST', path, headers: { ...json, 'x-auth-mode': ['cookie', 'body'] }, body: '{"username":"alice","password":"x"}', mayPass: path === '/auth/logout' })
    out.push({ name: `${path} x-auth-mode COOKIE`, method: 'POST', path, headers: { ...json, 'x-auth-mode': 'COOKIE' }, body: '{"username":"alice","password":"x"}', mayPass: path === '/auth/logout' })
  }

  const tokenVariants: Record<string, string> = {
    'truncated token': valid.access.slice(0, -10),
    'padded token': `${valid.access}==`,
    'token with a trailing dot': `${valid.access}.`,
    'token with a changed character': charChanged(valid.access),
    'two segments': valid.access.split('.').slice(0, 2).join('.'),
    'four segments': `${valid.access}.x`,
    'alg none': `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${valid.access.split('.')[1]}.`,
    'a refresh token as access token': valid.refresh,
    'empty segments': '..',
    'long token': 'a'.repeat(6000),
    'latin-1 bytes': 'tok\u00e9n\u00ff',
    'spaces inside': valid.access.replace('.', ' . '),
  }
  for (const path of PROTECTED) {
    for (const [name, token] of Object.entries(tokenVariants)) {
      out.push({ name: `${path} bearer: ${name}`, method: 'GET', path, headers: { authorization: `Bearer ${token}` } })
      out.push({ name: `${path} cookie: ${name}`, method: 'GET', path, headers: { cookie: `access_token=${token}` } })
    }
    for (const authorization of ['Bearer', 'Bearer ', 'bearer', 'Basic YWxpY2U6eA==', 'Token abc', 'Bearer\t', `Bearer  ${valid.access} extra`, `Bearer ${valid.access}, Bearer x`]) {
      out.push({ name: `${path} authorization ${JSON.stringify(authorization.slice(0, 24))}`, method: 'GET', path, headers: { authorization } })
    }
    // Node keeps the first of duplicate Authorization lines; the valid one first may pass, garbage first may not.
    out.push({ name: `${path} two Authorization headers, garbage first`, method: 'GET', path, headers: { authorization: ['Bearer garbage', `Bearer ${valid.access}`] } })
    out.push({ name: `${path} two Authorization headers, valid first`, method: 'GET', path, headers: { authorization: [`Bearer ${valid.access}`, 'Bearer garbage'] }, mayPass: path === '/api/profile' })
    for (const cookie of ['access_token=', 'access_token=%zz', `access_token=${'x'.repeat(4000)}`, 'access_token', '; ; ;', '=x', `access_token=garbage; access_token=${valid.access}`, 'access_token="quoted"', 'access_token=a\tb']) {
      out.push({ name: `${path} cookie ${JSON.stringify(cookie.slice(0, 30))}`, method: 'GET', path, headers: { cookie } })
    }
    out.push({ name: `${path} two Cookie headers`, method: 'GET', path, headers: { cookie: ['access_token=garbage', 'x=y'] } })
    out.push({ name: `${path} query junk`, method: 'GET', path: `${path}?a[b][c]=1&__proto__[x]=1&a=${'x'.repeat(3000)}` })
    out.push({ name: `${path} POST`, method: 'POST', path, headers: { 'content-type': 'application/json' }, body: '{}' })
    out.push({ name: `${path} DELETE`, method: 'DELETE', path })
  }
  for (const cookie of ['refresh_token=', 'refresh_token=a.b.c', `refresh_token=${'x'.repeat(4000)}`, 'refresh_token=%00', `refresh_token=${charChanged(valid.refresh)}`, `refresh_token=${valid.refresh.slice(0, -5)}`]) {
    out.push({ name: `/auth/refresh cookie ${JSON.stringify(cookie.slice(0, 30))}`, method: 'POST', path: '/auth/refresh', headers: { cookie } })
    out.push({ name: `/auth/logout cookie ${JSON.stringify(cookie.slice(0, 30))}`, method: 'POST', path: '/auth/logout', headers: { cookie }, mayPass: true })
  }
  for (const path of ['/auth/login%00', '/auth/%2e%2e/api/profile', '/API/PROFILE', '/api/profile/', '//api/profile', '/api/profile;x', '/api/%', '/health?%zz', '/ready/..', `/${'a'.repeat(4000)}`, '/docs/json?x=%ff']) {
    out.push({ name: `GET ${path.slice(0, 30)}`, method: 'GET', path, mayPass: path.startsWith('/health') || path.startsWith('/docs') })
  }
  for (const method of ['PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    out.push({ name: `${method} /auth/login`, method, path: '/auth/login', headers: { 'content-type': 'application/json' }, body: '{}' })
  }
  // Preflights, CORS being on (CORS_ORIGINS set): half-formed ones are 400s; whole ones are answered.
  for (const path of ['/auth/login', '/auth/refresh', '/auth/logout', '/api/profile', '/api/admin']) {
    out.push({ name: `OPTIONS ${path} without Origin`, method: 'OPTIONS', path, headers: { 'access-control-request-method': 'POST' } })
    out.push({ name: `OPTIONS ${path} without Access-Control-Request-Method`, method: 'OPTIONS', path, headers: { origin: SPA } })
    out.push({ name: `OPTIONS ${path} from a foreign origin`, method: 'OPTIONS', path, headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' }, mayPass: true })
    out.push({ name: `OPTIONS ${path} asking for odd headers`, method: 'OPTIONS', path, headers: { origin: SPA, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'x-'.repeat(2000) }, mayPass: true })
  }
  return out
}

const RAW: Record<string, Buffer> = {
  'null byte in a header': Buffer.from('GET /api/profile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\u0000b\r\n\r\n', 'latin1'),
  'header line without a colon': Buffer.from('GET /api/profile HTTP/1.1\r\nHost: x\r\nAuthorization\r\n\r\n'),
  'invalid bytes in the URL': Buffer.concat([Buffer.from('GET /api/'), Buffer.from([0xff, 0xfe]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]),
  'content-length larger than the body': Buffer.from('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}'),
  'two content-lengths': Buffer.from('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'),
  'bad chunked encoding': Buffer.from('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'),
  'HTTP/0.9 request': Buffer.from('GET /api/profile\r\n\r\n'),
  'garbage request line': Buffer.from('\u0001\u0002\u0003 / HTTP/1.1\r\n\r\n', 'latin1'),
  // Methods Node's HTTP client will not carry a body for: sent by hand.
  'PROPFIND with a body': Buffer.from('PROPFIND /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'),
  'TRACE with a body': Buffer.from('TRACE /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'),
  'HTTP/1.1 without Host': Buffer.from('POST /auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'),
  'two Host headers': Buffer.from('GET /api/profile HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'),
  'an unknown Expect': Buffer.from('POST /auth/login HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'),
}

async function corpus (t: Test, store: StoreKind) {
  const { app } = await buildTestApp(t, store, { CORS_ORIGINS: SPA })
  const { port } = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const tokens = await loginTokens(app, USERS.alice)
  const all = cases({ access: tokens.access_token, refresh: tokens.refresh_token })
  t.ok(all.length + Object.keys(RAW).length >= 200, `${all.length + Object.keys(RAW).length} cases`)

  const failures: string[] = []
  for (const c of all) {
    let answer: Answer
    try {
      answer = await send(Number(port), c)
    } catch (err) {
      failures.push(`${c.name}: ${(err as Error).message}`)
      continue
    }
    if (answer.status >= 500) failures.push(`${c.name}: ${answer.status} ${answer.body.slice(0, 120)}`)
    if (answer.status < 400 && c.mayPass !== true) failures.push(`${c.name}: let through with ${answer.status}`)
    if (answer.status >= 400 && !/^application\/json/.test(answer.contentType)) failures.push(`${c.name}: ${answer.status} is not JSON (${answer.contentType})`)
    if (/\n\s+at |"stack"/.test(answer.body)) failures.push(`${c.name}: a stack trace`)
  }
  for (const [name, bytes] of Object.entries(RAW)) {
    let answer: Answer
    try {
      answer = await sendRaw(Number(port), bytes)
    } catch (err) {
      failures.push(`raw ${name}: ${(err as Error).message}`)
      continue
    }
    if (answer.status === 0 || answer.status >= 500) failures.push(`raw ${name}: status ${answer.status}`)
    if (answer.status >= 200 && answer.status < 300) failures.push(`raw ${name}: let through with ${answer.status}`)
    if (answer.status >= 400 && !/^application\/json/.test(answer.contentType)) failures.push(`raw ${name}: ${answer.status} is not JSON (${answer.contentType})`)
  }
  t.same(failures, [], 'no 5xx, no hang, no stack trace, nothing let through, errors in JSON')

  // Nothing was lost either: alice's session survived all of it.
  const after = await app.inject({ url: '/api/profile', headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal(after.statusCode, 200, 'the session the corpus attacked still works')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token } })).statusCode, 200, 'and its refresh token was not spent')
}

for (const store of STORE_KINDS) t.test(`${store} store`, t => corpus(t, store))
