import t from 'tap'
import { STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { login } from './helpers/http.js'
import { dummyPasswordHash, hashPassword, verifyPassword } from '../src/passwords.js'

async function median (runs: number, measure: () => Promise<number>): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) samples.push(await measure())
  samples.sort((a, b) => a - b)
  return samples[Math.floor(runs / 2)] as number
}

for (const store of STORE_KINDS) {
  t.test(`${store} store: an unknown user costs what a wrong password costs, from the first login on`, async (t) => {
    const { app } = await buildTestApp(t, store)
    const timeLogin = (username: string) => async () => {
      const started = performance.now()
      const response = await login(app, username, 'definitely-wrong')
      t.equal(response.statusCode, 401)
      return performance.now() - started
    }
    t.equal(await loopTurnsDuring(dummyPasswordHash), 0, 'the dummy hash was made at start-up, not by the first unknown user')
    const wrongPassword = await median(7, timeLogin(USERS.alice.username))
    const unknownUser = await median(7, timeLogin('nobody-at-all'))
    t.ok(wrongPassword > 3, `a failed login does real argon2 work (${wrongPassword.toFixed(1)} ms)`)
    const ratio = unknownUser / wrongPassword
    t.ok(ratio > 0.5 && ratio < 2, `unknown user / wrong password = ${ratio.toFixed(2)} (${unknownUser.toFixed(1)} / ${wrongPassword.toFixed(1)} ms)`)
  })
}

/** How many event-loop turns run while the work is in flight: none when it blocks the loop. */
async function loopTurnsDuring (work: () => Promise<unknown>): Promise<number> {
  let turns = 0
  let done = false
  const spin = () => { if (!done) { turns++; setImmediate(spin) } }
  const pending = work()
  setImmediate(spin)
  await pending
  done = true
  return turns
}

t.test('hashing and verification run off the event loop', async (t) => {
  const hash = await hashPassword('a password')
  t.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'OWASP parameters')
  const turnsHashing = await loopTurnsDuring(() => hashPassword('another password'))
  t.ok(turnsHashing > 50, `the loop kept turning while hashing (${turnsHashing} turns)`)
  const turnsVerifying = await loopTurnsDuring(() => verifyPassword(hash, 'a password'))
  t.ok(turnsVerifying > 50, `and while verifying (${turnsVerifying} turns)`)
  t.equal(await verifyPassword(hash, 'a password'), true)
  t.equal(await verifyPassword(hash, 'a passworD'), false)
  t.equal(await verifyPassword('not-a-phc-string', 'a password'), false, 'a malformed hash is a mismatch, not an exception')
})
