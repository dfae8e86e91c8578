import { spawn } from 'node:child_process'
import t from 'tap'
import { freePort } from './helpers/redis.js'

t.test('npm run example:spa (after the build): the page on its port, the API beside it, allowing the page\'s origin', async (t) => {
  const [spaPort, apiPort] = [await freePort(), await freePort()]
  // As a newcomer runs it: development (demo users, the embedded store), nothing else configured.
  const child = spawn(process.execPath, ['examples/spa/serve.mjs'], {
    env: { PATH: process.env.PATH ?? '', SPA_PORT: String(spaPort), PORT: String(apiPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  const deadline = Date.now() + 20_000
  while (!stdout.includes('Server listening') || !stdout.includes('example SPA:')) {
    if (Date.now() > deadline) throw new Error(`not started: ${stdout}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const spaOrigin = `http://localhost:${spaPort}`
  t.match(stdout, `example SPA: ${spaOrigin} (log in as demo / demo-password)`, 'it says where to go and how to log in')

  const page = await fetch(`http://127.0.0.1:${spaPort}/`)
  t.equal(page.status, 200)
  t.match(await page.text(), /<script type="importmap">/, 'the page')
  t.same(await (await fetch(`http://127.0.0.1:${spaPort}/config.json`)).json(), { apiUrl: `http://localhost:${apiPort}` }, 'pointed at the API')
  t.equal((await fetch(`http://127.0.0.1:${spaPort}/vendor/token-auth-client/index.js`)).status, 200, 'the client kit')
  t.equal((await fetch(`http://127.0.0.1:${spaPort}/vendor/openapi-fetch.js`)).status, 200, 'openapi-fetch')

  const login = await fetch(`http://127.0.0.1:${apiPort}/auth/login`, {
    method: 'POST',
    headers: { origin: spaOrigin, 'content-type': 'application/json', 'x-auth-mode': 'cookie' },
    body: JSON.stringify({ username: 'demo', password: 'demo-password' }),
  })
  t.equal(login.status, 200, 'the demo user logs in')
  t.equal(login.headers.get('access-control-allow-origin'), spaOrigin, 'from the page\'s origin (CORS_ORIGINS)')
  t.equal(login.headers.get('access-control-allow-credentials'), 'true')

  child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C stops both')
})
