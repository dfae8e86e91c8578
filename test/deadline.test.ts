import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { RequestDeadline, STORE_BUDGET_MS } from '../src/deadline.js'

t.test('a request deadline: the budget from arrival, moved by time spent on something else', async (t) => {
  const deadline = new RequestDeadline(10_000)
  t.equal(deadline.at, 10_000 + STORE_BUDGET_MS, 'one second from arrival')
  t.equal(await deadline.excluding(async () => { await sleep(60); return 'done' }), 'done', 'the work\'s result')
  t.ok(deadline.at >= 10_000 + STORE_BUDGET_MS + 55, `moved by the time excluded (${deadline.at - 10_000 - STORE_BUDGET_MS} ms)`)
  const before = deadline.at
  await t.rejects(deadline.excluding(async () => { await sleep(20); throw new Error('refused') }), /refused/, 'a failure passes through')
  t.ok(deadline.at >= before + 15, 'and its time is excluded too')
})
