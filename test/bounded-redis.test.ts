import t, { type Test } from 'tap'
import { StoreUnavailableError } from '../src/errors.js'
import { BoundedRedis, COMMAND_TIMEOUT_MS } from '../src/store/bounded-redis.js'
import { failFastRedis } from '../src/store/redis-client.js'
import { PrivateRedis } from './helpers/redis.js'

// ioredis behind our own timeouts, on a private Redis that the tests stall (SIGSTOP).

async function stallable (t: Test) {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const client = failFastRedis(redis.url)
  await client.connect()
  const dropped: string[] = []
  const bounded = new BoundedRedis(client, reason => dropped.push(reason))
  t.teardown(() => { bounded.close(); client.disconnect() })
  return { redis, client, bounded, dropped }
}

/** ms until PING through `bounded` answers again (Infinity: not within `limit`). */
async function answeringAgainAfter (bounded: BoundedRedis, limit: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < limit) {
    if (await bounded.run(() => bounded.client.ping()).then(() => true, () => false)) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return Infinity
}

t.test('silence for a whole timeout: every call fails at it, the connection is dropped once and reconnects at once', async (t) => {
  const { redis, client, bounded, dropped } = await stallable(t)
  const closing = new Promise(resolve => client.once('close', () => resolve(true)))
  redis.pause()
  const started = performance.now()
  const results = await Promise.allSettled([bounded.run(() => client.ping()), bounded.run(() => client.get('k')), bounded.run(() => client.time())])
  const ms = performance.now() - started
  t.ok(results.every(r => r.status === 'rejected' && r.reason instanceof StoreUnavailableError), 'three 503s')
  t.ok(ms >= COMMAND_TIMEOUT_MS - 10 && ms < COMMAND_TIMEOUT_MS + 300, `at the timeout (${Math.round(ms)} ms)`)
  t.same(dropped, [`no answer within ${COMMAND_TIMEOUT_MS} ms`], 'reported once, not once per call')
  // Still stalled: a graceful close would wait for Redis's own FIN (ioredis: up to 2 s).
  const closed = await Promise.race([closing, new Promise(resolve => setTimeout(() => resolve(false), 300))])
  t.equal(closed, true, 'the silent connection is closed at once, without waiting for Redis')
  redis.resume()
  const back = await answeringAgainAfter(bounded, 1500)
  t.ok(back < 1000, `a new one answers ${back} ms after Redis is back`)
})

t.test('a wait on something else, or a request deadline shorter than the timeout, drops nothing', async (t) => {
  const { redis, client, bounded, dropped } = await stallable(t)
  await t.rejects(bounded.wait(() => new Promise(() => {})), StoreUnavailableError, 'a wait that never ends: 503 at the timeout')
  redis.pause()
  await t.rejects(bounded.run(() => client.ping(), Date.now() + 100), StoreUnavailableError, 'past its request\'s deadline: 503')
  redis.resume()
  t.same(dropped, [], 'nothing dropped')
  t.equal(await bounded.run(() => client.ping()), 'PONG', 'the same connection answers')
})

t.test('a rotation in flight holds a drop off until its caller gives up: Redis cannot run it after a 503', async (t) => {
  const { redis, client, bounded, dropped } = await stallable(t)
  let closedAt = Infinity
  client.once('close', () => { closedAt = Date.now() })
  redis.pause()
  const silent = bounded.run(() => client.ping()) // silent at +500 ms: asks for a drop
  await new Promise(resolve => setTimeout(resolve, 100))
  // Its caller gives up at +600 ms; until then, Redis waking up would run it and answer it.
  const givenUpAt = Date.now() + 500
  const rotation = bounded.guarded(givenUpAt, () => client.incr('rotation'), givenUpAt)
  await t.rejects(silent, StoreUnavailableError)
  t.same(dropped, [`no answer within ${COMMAND_TIMEOUT_MS} ms`], 'the silence is reported at once')
  await t.rejects(rotation, StoreUnavailableError, 'the rotation fails on its own timeout')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(closedAt >= givenUpAt - 5 && closedAt < givenUpAt + 100, `the connection closed ${closedAt - givenUpAt} ms after the rotation's cut-off, not before`)
  redis.resume()
  t.ok(await answeringAgainAfter(bounded, 1500) < 1000, 'and a new one answers')
})
