import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

// The cheap static check, for contributors without podman; `npm run test:image` builds and runs the image.
const dockerfile = readFileSync('Dockerfile', 'utf8')
const instructions = dockerfile.split('\n').filter(line => /^[A-Z]+\s/.test(line))
const stages = dockerfile.split(/^FROM /m).slice(1)
const runtime = stages.at(-1) ?? ''

t.test('multi-stage, on the project\'s Node LTS line (.nvmrc), named in full (podman resolves no short name offline)', async (t) => {
  t.ok(stages.length >= 2, 'a build stage and a runtime stage')
  const line = readFileSync('.nvmrc', 'utf8').trim()
  for (const from of instructions.filter(i => i.startsWith('FROM '))) t.match(from, new RegExp(`^FROM docker\\.io/library/node:${line}-bookworm-slim(\\s+AS\\s+\\w+)?$`), from)
})

t.test('the build stage installs from the lockfile and copies every source directory the build needs', async (t) => {
  t.match(stages[0], /COPY package\.json package-lock\.json/)
  t.match(stages[0], /RUN npm ci/)
  const tsconfig = JSON.parse(readFileSync('tsconfig.build.json', 'utf8')) as { include: string[] }
  for (const dir of tsconfig.include) t.match(stages[0], new RegExp(`COPY ${dir} \\./${dir}`), `copies ${dir}/`)
  t.match(stages[0], /npm run build/)
  t.match(stages[0], /npm prune --omit=dev/)
})

t.test('the runtime stage: production env, non-root user, starts the built server', async (t) => {
  t.match(runtime, /NODE_ENV=production/)
  t.match(runtime, /HOST=0\.0\.0\.0/, 'listens beyond loopback inside the container')
  t.match(runtime, /^USER node$/m)
  t.notMatch(runtime, /npm (start|run)/, 'node is started directly so SIGTERM reaches it')
  const cmd = /^CMD \["node", "([^"]+)"\]$/m.exec(runtime)
  t.equal(cmd?.[1], 'dist/src/server.js')
  t.ok(existsSync('src/server.ts'), 'dist/src/server.js is what tsc makes of src/server.ts')
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.start, /node dist\/src\/server\.js/, 'the same entry point as npm start')
})

t.test('.dockerignore keeps local builds and dependencies out of the context', async (t) => {
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n')
  for (const entry of ['node_modules', 'dist', '.git']) t.ok(ignored.includes(entry), entry)
})
