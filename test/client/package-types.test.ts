import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import t from 'tap'

t.test('the built package is typed for its users: a program importing token-auth-client type-checks, paths included', async (t) => {
  t.ok(existsSync('client/dist/index.d.ts') && existsSync('client/dist/api.d.ts'), 'declarations built (npm run build)')
  let output = ''
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'test/client/fixtures/tsconfig.json'], { encoding: 'utf8' })
  } catch (err) {
    output = String((err as { stdout?: string }).stdout ?? err)
  }
  t.equal(output, '', 'tsc: no errors (the @ts-expect-error on an unknown path holds, so paths are typed)')
})
