import t from 'tap'
import { CORE_STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'

const PARALLEL = 25
const ROUNDS = 20

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store: of ${PARALLEL} concurrent refreshes with one token exactly one rotates and all get its successor, ${ROUNDS} times`, async (t) => {
    const { app } = await buildTestApp(t, store)
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await loginTokens(app, USERS.alice)
      const responses = await Promise.all(Array.from({ length: PARALLEL }, () => refresh(app, tokens.refresh_token)))
      t.same([...new Set(responses.map(r => r.statusCode))], [200], `round ${round}: all 200`)
      const successors = [...new Set(responses.map(r => r.json().refresh_token))]
      t.equal(successors.length, 1, `round ${round}: one successor`)
      t.equal((await refresh(app, successors[0])).statusCode, 200, `round ${round}: which rotates once more`)
    }
  })

  t.test(`${store} store, strict mode: of ${PARALLEL} concurrent refreshes with one token exactly one wins, ${ROUNDS} times`, async (t) => {
    const { app } = await buildTestApp(t, store, { REFRESH_REUSE_GRACE: '0' })
    for (let round = 0; round < ROUNDS; round++) {
      const tokens = await loginTokens(app, USERS.alice)
      const responses = await Promise.all(Array.from({ length: PARALLEL }, () => refresh(app, tokens.refresh_token)))
      const statuses = responses.map(r => r.statusCode)
      const winners = responses.filter(r => r.statusCode === 200)
      t.equal(winners.length, 1, `round ${round}: one winner`)
      t.equal(statuses.filter(s => s === 401).length, PARALLEL - 1, `round ${round}: every other one is a 401`)
      // The losers presented a spent token: reuse detection revoked the session, winner included.
      const winner = winners[0]?.json()
      t.equal((await refresh(app, winner.refresh_token)).statusCode, 401, `round ${round}: the session is revoked`)
      t.equal((await profile(app, bearer(winner.access_token))).statusCode, 401)
    }
  })

  t.test(`${store} store: concurrent refreshes of different sessions do not interfere`, async (t) => {
    const { app } = await buildTestApp(t, store)
    const sessions = []
    for (let i = 0; i < PARALLEL; i++) sessions.push(await loginTokens(app, USERS.alice))
    const responses = await Promise.all(sessions.map(s => refresh(app, s.refresh_token)))
    t.same(responses.map(r => r.statusCode), sessions.map(() => 200))
  })
}
