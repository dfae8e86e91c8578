import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import t from 'tap'

t.test('client/src/api.ts is what openapi-typescript makes of openapi.yaml now (npm run client:types)', async (t) => {
  const fresh = join(mkdtempSync(join(tmpdir(), 'api-types-')), 'api.ts')
  // Wherever npm put it (the client workspace's own node_modules, or hoisted).
  const cli = join(dirname(createRequire(join(process.cwd(), 'client/package.json')).resolve('openapi-typescript/package.json')), 'bin/cli.js')
  execFileSync(process.execPath, [cli, 'openapi.yaml', '-o', fresh], { stdio: 'ignore' })
  t.equal(readFileSync('client/src/api.ts', 'utf8'), readFileSync(fresh, 'utf8'), 'regenerate with npm run client:types')
})
