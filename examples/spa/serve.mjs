// `npm run example:spa`: the example SPA on its own port, and the API (development mode, demo users)
// configured for it. No build step for the page: it loads the client kit's compiled ESM.
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const openapiFetch = createRequire(join(root, 'client', 'package.json')).resolve('openapi-fetch')
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json' }

/** Serves the page and the kit on 127.0.0.1:`port`, pointed at `apiUrl`; resolves with the server. */
export function serveSpa ({ apiUrl, port = 0 }) {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://spa').pathname
    let file
    if (path === '/config.json') {
      response.writeHead(200, { 'content-type': TYPES['.json'] }).end(JSON.stringify({ apiUrl }))
      return
    }
    if (path === '/' || path === '/index.html') file = join(here, 'index.html')
    else if (path === '/app.js') file = join(here, 'app.js')
    else if (path === '/vendor/openapi-fetch.js') file = openapiFetch.replace(/\.cjs$/, '.mjs')
    else if (path.startsWith('/vendor/token-auth-client/')) {
      const relative = normalize(path.slice('/vendor/token-auth-client/'.length))
      if (!relative.startsWith('..')) file = join(root, 'client', 'dist', relative)
    }
    try {
      if (file === undefined) throw new Error('not found')
      const body = await readFile(file)
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body)
    } catch {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    }
  })
  return new Promise(resolve => server.listen(port, '127.0.0.1', () => resolve(server)))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const spaPort = Number(process.env.SPA_PORT ?? 5173)
  const apiPort = Number(process.env.PORT ?? 3000)
  // localhost, not 127.0.0.1: one site for the page and the API, so the SameSite cookies flow.
  const spaOrigin = `http://localhost:${spaPort}`
  const api = spawn(process.execPath, [join(root, 'dist', 'src', 'server.js')], {
    env: { ...process.env, PORT: String(apiPort), CORS_ORIGINS: spaOrigin },
    stdio: 'inherit',
  })
  await serveSpa({ apiUrl: `http://localhost:${apiPort}`, port: spaPort })
  console.log(`example SPA: ${spaOrigin} (log in as demo / demo-password), API: http://localhost:${apiPort}`)
  process.on('SIGINT', () => { api.kill('SIGTERM'); process.exit(0) })
}
