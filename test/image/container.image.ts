import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { request } from 'node:http'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { TEST_SECRET, USERS } from '../helpers/app.js'
import { eventually } from '../helpers/eventually.js'
import { connectionRefused } from '../helpers/http.js'
import { PrivateRedis, freePort } from '../helpers/redis.js'

// `npm run test:image` (not part of `npm test`: it needs podman and a few minutes): the image built from
// the Dockerfile and run the way operators run it, against a private Redis. Podman's settings are this
// kind of machine's (cgroupfs, runc, host network, limits it may not raise); see README "Deploying".

t.setTimeout(20 * 60_000)

const IMAGE = 'localhost/token-auth-api:image-test'
const PODMAN = ['--cgroup-manager=cgroupfs']
const RUNTIME = ['--runtime', 'runc', '--network=host', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']
/** The image must stay small: what it holds beyond the base is the built server and production dependencies. */
const MAX_IMAGE_BYTES = 350 * 1024 * 1024

function podman (args: string[], timeoutMs = 60_000): SpawnSyncReturns<string> {
  return spawnSync('podman', [...PODMAN, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 })
}

t.test('the image: built from the Dockerfile, small, without sources or dev tooling, serving as a non-root user, healthy, and stopping cleanly', async (t) => {
  const baseImage = spawnSync('sh', ['scripts/image-base.sh'], { encoding: 'utf8', timeout: 10 * 60_000 })
  t.equal(baseImage.status, 0, `the base image is here (${(baseImage.stdout + baseImage.stderr).trim().split('\n').at(-1) ?? ''})`)
  const startedBuild = Date.now()
  const build = podman(['build', ...RUNTIME, '--format', 'docker', '--pull=never', '-t', IMAGE, '.'], 15 * 60_000)
  t.equal(build.status, 0, `built in ${Math.round((Date.now() - startedBuild) / 1000)} s${build.status === 0 ? '' : `: ${build.stderr.slice(-2000)}`}`)
  if (build.status !== 0) return

  const size = Number(podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE]).stdout.trim())
  t.comment(`image size: ${(size / 1024 / 1024).toFixed(0)} MB`)
  t.ok(size > 0 && size < MAX_IMAGE_BYTES, `${(size / 1024 / 1024).toFixed(0)} MB, under ${MAX_IMAGE_BYTES / 1024 / 1024} MB`)

  // What the image holds under /app: the built server and production dependencies, nothing else of ours.
  // Dev-only as the lockfile says: a devDependency that production code also pulls in (yaml, through
  // @fastify/swagger) belongs in the image.
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { dev?: boolean }> }
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { devDependencies: Record<string, string> }
  const devOnly = Object.keys(pkg.devDependencies).filter(name => lock.packages[`node_modules/${name}`]?.dev === true)
  t.ok(devOnly.includes('tap') && devOnly.includes('typescript'), `${devOnly.length} dev-only packages to look for`)
  const devDependencies = devOnly.map(name => `/app/node_modules/${name}`).join(' ')
  const listing = podman(['run', '--rm', ...RUNTIME, '--entrypoint', 'sh', IMAGE, '-c',
    `ls -A /app; echo ---; find /app -name "*.ts" ! -name "*.d.ts" ! -path "*/node_modules/*"; echo ---; ls -A /app/dist; echo ---; for d in ${devDependencies}; do test -e "$d" && echo "$d"; done; true`])
  t.equal(listing.status, 0, 'the image runs a shell')
  const [top = '', sources = '', built = '', leaked = ''] = listing.stdout.split('---\n')
  t.same(top.trim().split('\n').sort(), ['dist', 'node_modules', 'package.json'], '/app: the build, its dependencies, its manifest')
  t.equal(sources.trim(), '', 'no TypeScript source of ours')
  t.same(built.trim().split('\n').sort(), ['plugins', 'routes', 'schemas', 'src'], 'dist/: the server\'s code, no tests or benchmark')
  t.equal(leaked.trim(), '', 'no devDependency (tap, typescript, eslint, oidc-provider, playwright-core, …)')

  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const port = await freePort()
  const usersFile = join(mkdtempSync(join(tmpdir(), 'token-auth-image-')), 'users.json')
  writeFileSync(usersFile, JSON.stringify([USERS.alice]))
  const name = `token-auth-image-test-${process.pid}`
  t.teardown(() => { podman(['rm', '-f', name]) })
  const run = podman(['run', '-d', '--name', name, ...RUNTIME,
    '-e', `PORT=${port}`, '-e', `REDIS_URL=${redis.url}`, '-e', `JWT_SECRET=${TEST_SECRET}`, '-e', 'USERS_FILE=/run/users.json',
    '-v', `${usersFile}:/run/users.json:ro`, IMAGE])
  t.equal(run.status, 0, `the container started${run.status === 0 ? '' : `: ${run.stderr}`}`)
  const base = `http://127.0.0.1:${port}`
  t.ok(await eventually(async () => (await fetch(`${base}/health`)).ok, 30_000), `/health answers on port ${port}`)
  t.same(await (await fetch(`${base}/health`)).json(), { status: 'ok' })

  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password }) })
  t.equal(login.status, 200, 'login')
  const { access_token: accessToken } = await login.json() as { access_token: string }
  const me = await fetch(`${base}/api/profile`, { headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(me.status, 200, '/api/profile with its access token')
  t.match(await me.json(), { username: USERS.alice.username, roles: ['user'] })

  t.equal(podman(['exec', name, 'id', '-u']).stdout.trim(), '1000', 'the server runs as uid 1000 (node), not root')
  t.equal(podman(['inspect', '--format', '{{.Config.User}}', name]).stdout.trim(), 'node', 'its configured user is node')
  const healthcheck = podman(['healthcheck', 'run', name])
  t.equal(healthcheck.status, 0, `the image's HEALTHCHECK passes (${healthcheck.stdout.trim() || healthcheck.stderr.trim()})`)

  // SIGTERM with a request in flight: its headers and half its body arrived before the signal. The
  // signal goes straight to the server's process (podman's own CLI takes long enough to start that the
  // request's one-second store budget, counted from its arrival, would run out meanwhile).
  const pid = Number(podman(['inspect', '--format', '{{.State.Pid}}', name]).stdout.trim())
  t.ok(pid > 1, `the server's process on the host: ${pid}`)
  const body = JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password })
  let sent: ReturnType<typeof request> | undefined
  const answer = new Promise<number>((resolve, reject) => {
    sent = request({ host: '127.0.0.1', port, path: '/auth/login', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    sent.on('error', reject)
    sent.write(body.slice(0, 10))
  })
  await new Promise(resolve => setTimeout(resolve, 100))
  const signalledAt = Date.now()
  process.kill(pid, 'SIGTERM')
  t.ok(await eventually(() => connectionRefused(port), 5000, 2), 'the listener closed')
  sent?.end(body.slice(10))
  const inFlight = await answer
  t.equal(inFlight, 200, `the request in flight at SIGTERM is answered (new connections refused ${Date.now() - signalledAt} ms after the signal)`)
  if (inFlight !== 200) t.comment(podman(['logs', name]).stdout.slice(-3000))
  t.equal(podman(['wait', name], 20_000).stdout.trim(), '0', 'exit code 0')
  const exitedAfter = Date.now() - signalledAt
  t.ok(exitedAfter < 10_000, `exited ${exitedAfter} ms after SIGTERM, within the app's 10 s grace`)

  // As an operator stops it: podman stop, with a timeout above the app's own 10 s (never its SIGKILL).
  t.equal(podman(['start', name]).status, 0, 'started again')
  t.ok(await eventually(async () => (await fetch(`${base}/health`)).ok, 30_000), '/health after the restart')
  const stopAt = Date.now()
  t.equal(podman(['stop', '--time', '20', name], 30_000).status, 0, 'podman stop --time 20')
  t.ok(Date.now() - stopAt < 10_000, `stopped in ${Date.now() - stopAt} ms`)
  t.equal(podman(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim(), '0', 'exit code 0, not the 137 of a SIGKILL')
  t.match(podman(['logs', name]).stdout, /"signal":"SIGTERM".*shutting down/, 'the shutdown is logged')
})
