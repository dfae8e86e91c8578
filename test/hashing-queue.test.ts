import { availableParallelism } from 'node:os'
import t from 'tap'
import { HashingQueue, LoginBusyError } from '../src/hashing-queue.js'

/** A hash that finishes when the test says so. */
function controlled () {
  let finish!: () => void
  let started = false
  const done = new Promise<string>(resolve => { finish = () => resolve('hashed') })
  return { work: () => { started = true; return done }, finish: () => finish(), get started () { return started } }
}

const busy = (statusCode: number) => ({ constructor: LoginBusyError, statusCode, code: 'LOGIN_BUSY', retryAfter: 1 })

t.test('per client: a third hash in flight is a 429; other clients go on', async (t) => {
  const queue = new HashingQueue({ concurrency: 4, perClient: 2 })
  const [a1, a2] = [controlled(), controlled()]
  const first = queue.run('a', a1.work)
  const second = queue.run('a', a2.work)
  await t.rejects(queue.run('a', async () => 'never'), busy(429), 'a third from the same client')
  t.equal(await queue.run('b', async () => 'b hashed'), 'b hashed', 'another client is not held up')
  a1.finish()
  t.equal(await first, 'hashed')
  t.equal(await queue.run('a', async () => 'again'), 'again', 'a finished hash gives the client its place back')
  a2.finish()
  await second
  t.same(queue.load, { running: 0, waiting: 0, clients: 0 }, 'nothing left behind')
})

t.test('concurrency: hashes beyond it wait their turn, first come first served', async (t) => {
  const queue = new HashingQueue({ concurrency: 1, perClient: 10 })
  const order: string[] = []
  const first = controlled()
  const running = queue.run('a', first.work)
  const waiting = ['b', 'c', 'd'].map(client => queue.run(client, async () => { order.push(client); return client }))
  await new Promise(resolve => setImmediate(resolve))
  t.same(queue.load, { running: 1, waiting: 3, clients: 4 })
  first.finish()
  await Promise.all([running, ...waiting])
  t.same(order, ['b', 'c', 'd'])
})

t.test('a full queue, and a wait over the bound, are 503s', async (t) => {
  const queue = new HashingQueue({ concurrency: 1, perClient: 10, maxQueued: 1, maxWaitMs: 50 })
  const hog = controlled()
  const running = queue.run('a', hog.work)
  const started = Date.now()
  const waiting = queue.run('b', async () => 'b')
  await t.rejects(queue.run('c', async () => 'c'), busy(503), 'no room to wait')
  await t.rejects(waiting, busy(503), 'the one waiting gives up at the bound')
  t.ok(Date.now() - started >= 45, 'after about 50 ms')
  t.same(queue.load, { running: 1, waiting: 0, clients: 1 }, 'the one that gave up left no trace')
  hog.finish()
  await running
  t.equal(await queue.run('c', async () => 'c'), 'c', 'and the queue works on')
})

t.test('a hash that fails frees its turn and its client\'s place', async (t) => {
  const queue = new HashingQueue({ concurrency: 1, perClient: 1 })
  await t.rejects(queue.run('a', async () => { throw new Error('argon2 failed') }), /argon2 failed/)
  t.same(queue.load, { running: 0, waiting: 0, clients: 0 })
  t.equal(await queue.run('a', async () => 'ok'), 'ok')
})

t.test('defaults: as many at once as there are cores, two per client', async (t) => {
  const queue = new HashingQueue()
  const cores = availableParallelism()
  const hogs = Array.from({ length: cores + 1 }, () => controlled())
  const runs = hogs.map((h, i) => queue.run(`client-${i}`, h.work))
  await new Promise(resolve => setImmediate(resolve))
  t.same(queue.load, { running: cores, waiting: 1, clients: cores + 1 }, `${cores} running, one waiting`)
  const second = controlled()
  const secondRun = queue.run('client-0', second.work)
  await t.rejects(queue.run('client-0', async () => 'x'), busy(429), 'a third from one client')
  for (const h of [...hogs, second]) h.finish()
  await Promise.all([...runs, secondRun])
})
