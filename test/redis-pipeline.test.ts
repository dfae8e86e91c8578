import t, { type Test } from 'tap'
import { RedisPipeline } from '../src/store/redis-pipeline.js'
import { RedisReplyError, ReplyParser, encodeCommand, type Reply } from '../src/store/resp.js'
import { PrivateRedis, deleteKeysUnder, testRedisUrl, uniqueKeyPrefix, withRedis } from './helpers/redis.js'

// The hot path's batched Redis connection, on real Redis servers: the shared one for what needs no
// outage, private ones to stall, kill and restart.

async function connected (t: Test, url: string, options: { commandTimeoutMs?: number, maxInFlight?: number } = {}) {
  const pipeline = new RedisPipeline({ url, commandTimeoutMs: options.commandTimeoutMs ?? 500, ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }) })
  await pipeline.connect()
  t.teardown(() => pipeline.close())
  return pipeline
}

async function privateRedis (t: Test): Promise<PrivateRedis> {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  return redis
}

/** send() as a promise that settles with what the callback got, and when. */
function settled (pipeline: RedisPipeline, args: Array<string | number>, timeoutMs?: number) {
  const sent = performance.now()
  return new Promise<{ err: Error | null, reply: Reply, ms: number }>(resolve => {
    pipeline.send(args, (err, reply) => { resolve({ err, reply, ms: performance.now() - sent }) }, timeoutMs)
  })
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

t.test('the parser: every RESP2 type, replies split at every byte and several in one read', async (t) => {
  const wire = Buffer.from('+OK\r\n-ERR wrong type\r\n:42\r\n$4\r\nhé!\r\n$-1\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n*-1\r\n*0\r\n')
  const expected = ['OK', 'ERR wrong type', 42, 'hé!', null, [1, ['a', ''], null], []]
  for (const split of [1, 2, 3, 7, wire.length]) {
    const replies: Reply[] = []
    const parser = new ReplyParser(reply => replies.push(reply))
    for (let offset = 0; offset < wire.length; offset += split) parser.feed(wire.subarray(offset, offset + split))
    t.same(replies.map(r => r instanceof RedisReplyError ? r.message : r), expected, `fed ${split} byte(s) at a time`)
    t.ok(replies[1] instanceof RedisReplyError, 'an error reply is an error')
  }
  t.equal(encodeCommand(['SET', 'k', 'hé', 7]), '*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nhé\r\n$1\r\n7\r\n', 'lengths in bytes, numbers as strings')
})

t.test('one write per event-loop turn, replies in order, one command\'s error fails no other', async (t) => {
  const url = await testRedisUrl()
  const prefix = uniqueKeyPrefix()
  t.teardown(() => deleteKeysUnder(url, prefix))
  const pipeline = await connected(t, url)
  const before = pipeline.stats
  const answers = await Promise.all([
    settled(pipeline, ['SET', `${prefix}k`, 'text']),
    settled(pipeline, ['INCR', `${prefix}k`]), // not an integer: an error reply
    settled(pipeline, ['GET', `${prefix}k`]),
    ...Array.from({ length: 200 }, (_, i) => settled(pipeline, ['INCRBY', `${prefix}n`, i])),
  ])
  const after = pipeline.stats
  t.equal(after.writes - before.writes, 1, '203 commands of one turn: one write')
  t.equal(after.commands - before.commands, 203)
  t.same(answers.slice(0, 3).map(a => [a.err?.message ?? null, a.reply]), [[null, 'OK'], ['ERR value is not an integer or out of range', null], [null, 'text']], 'the error is the failing command\'s alone')
  t.same(answers.slice(3).map(a => a.reply), Array.from({ length: 200 }, (_, i) => i * (i + 1) / 2), 'each reply to its own command, in order')

  await settled(pipeline, ['GET', `${prefix}k`])
  await settled(pipeline, ['GET', `${prefix}k`])
  t.equal(pipeline.stats.writes - after.writes, 2, 'two turns: two writes')
})

t.test('transactions and blocking commands are refused: they would need the connection to themselves', async (t) => {
  const pipeline = await connected(t, await testRedisUrl())
  for (const command of ['MULTI', 'exec', 'WATCH', 'BLPOP', 'SUBSCRIBE']) {
    const { err } = await settled(pipeline, [command, 'k'])
    t.match(err?.message, /cannot share a batched connection/, `${command}: refused before it leaves`)
  }
  t.same((await settled(pipeline, ['PING'])).reply, 'PONG', 'the connection is untouched')
})

t.test('scripts and plain commands in one write: in the order sent, each reply to its own caller (a MULTI, which could take in others\' commands, is refused above)', async (t) => {
  const url = await testRedisUrl()
  const prefix = uniqueKeyPrefix()
  t.teardown(() => deleteKeysUnder(url, prefix))
  const pipeline = new RedisPipeline({ url, commandTimeoutMs: 500 })
  // Reads the counter, adds one, reads it again: a command slipping in between would show as a gap.
  const script = pipeline.defineScript("local a = redis.call('INCR', KEYS[1]) local b = redis.call('INCR', KEYS[1]) return {a, b}", 1)
  await pipeline.connect()
  t.teardown(() => pipeline.close())
  const before = pipeline.stats.writes
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => new Promise<Reply>((resolve, reject) => {
    const answer = (err: Error | null, reply: Reply) => err === null ? resolve(reply) : reject(err)
    if (i % 2 === 0) pipeline.evalScript(script, [`${prefix}n`], answer)
    else pipeline.send(['INCR', `${prefix}n`], answer)
  })))
  t.equal(pipeline.stats.writes - before, 1, 'one write')
  const expected: Reply[] = []
  let n = 0
  for (let i = 0; i < 60; i++) expected.push(i % 2 === 0 ? [++n, ++n] : ++n)
  t.same(replies, expected, 'script, command, script…: every script\'s two steps adjacent, every reply in its place')
})

t.test('scripts go by SHA, and are sent in full once after SCRIPT FLUSH', async (t) => {
  const redis = await privateRedis(t)
  const pipeline = new RedisPipeline({ url: redis.url, commandTimeoutMs: 500 })
  const script = pipeline.defineScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1)
  await pipeline.connect()
  t.teardown(() => pipeline.close())
  const call = () => new Promise<Reply>((resolve, reject) => pipeline.evalScript(script, ['counter', 5], (err, reply) => err === null ? resolve(reply) : reject(err)))
  t.equal(await call(), 5)
  await withRedis(redis.url, r => r.script('FLUSH'))
  t.equal(await call(), 10, 'NOSCRIPT answered by sending the script itself')
  t.equal(await call(), 15)
})

t.test('a stalled Redis: commands fail at their timeout from the write, a shorter one sooner; late replies are dropped; a silent connection is replaced', async (t) => {
  const redis = await privateRedis(t)
  const pipeline = await connected(t, redis.url)
  const dropped: string[] = []
  pipeline.on('dropped', (reason: string) => dropped.push(reason))

  redis.pause()
  let calls = 0
  pipeline.send(['ECHO', 'late'], () => { calls++ }, 100)
  await sleep(120)
  redis.resume()
  const fresh = await settled(pipeline, ['ECHO', 'fresh'])
  t.same([fresh.err, fresh.reply], [null, 'fresh'], 'after a short stall, a new command gets its own answer (the late one was read and dropped)')
  t.equal(calls, 1, 'a timed-out command\'s callback ran once, never again for its late reply')
  t.same(dropped, [], 'a shorter timeout alone does not drop the connection')

  redis.pause()
  const [long, short] = await Promise.all([settled(pipeline, ['PING']), settled(pipeline, ['PING'], 150)])
  t.match(long.err?.message, /did not answer within 500 ms/)
  t.ok(long.ms >= 490 && long.ms < 700, `the default: failed after ${Math.round(long.ms)} ms`)
  t.match(short.err?.message, /did not answer within 150 ms/)
  t.ok(short.ms >= 140 && short.ms < 350, `the shorter one: after ${Math.round(short.ms)} ms`)
  t.same(dropped, ['no answer within 500 ms'], 'silent for a whole command timeout: the connection is dropped')
  const meanwhile = await settled(pipeline, ['PING'])
  t.ok(meanwhile.err !== null && meanwhile.ms < 20, `until it is back, commands fail at once (${Math.round(meanwhile.ms)} ms)`)
  redis.resume()
  let back = await settled(pipeline, ['ECHO', 'back'])
  for (let tries = 0; back.err !== null && tries < 30; tries++) {
    await sleep(100)
    back = await settled(pipeline, ['ECHO', 'back'])
  }
  t.equal(back.reply, 'back', 'a new connection answers')
})

t.test('a starved event loop does not turn a prompt answer into a timeout', async (t) => {
  const pipeline = await connected(t, await testRedisUrl(), { commandTimeoutMs: 200 })
  const answer = settled(pipeline, ['PING'])
  // Scheduled after the pipeline's flush: the command is written, then the loop is blocked past its timeout.
  setImmediate(() => {
    const until = performance.now() + 400
    while (performance.now() < until) { /* a long synchronous task */ }
  })
  const { err, reply } = await answer
  t.same([err, reply], [null, 'PONG'], 'the answer read once the loop ran again counts')
})

t.test('too many commands in flight: more fail at once instead of piling up', async (t) => {
  const redis = await privateRedis(t)
  const pipeline = await connected(t, redis.url, { maxInFlight: 10 })
  redis.pause()
  const waiting = Array.from({ length: 10 }, () => settled(pipeline, ['PING']))
  const refused = await settled(pipeline, ['PING'])
  t.match(refused.err?.message, /too many commands waiting/)
  t.ok(refused.ms < 20, `at once (${Math.round(refused.ms)} ms)`)
  redis.resume()
  t.same((await Promise.all(waiting)).map(a => a.reply), Array(10).fill('PONG'), 'the ten in flight were answered')
})

t.test('a lost connection fails what is in flight at once, sends fail fast meanwhile, and it comes back', async (t) => {
  const redis = await privateRedis(t)
  const pipeline = await connected(t, redis.url)
  let readies = 0
  pipeline.on('ready', () => { readies++ })
  redis.pause()
  const inFlight = settled(pipeline, ['PING'])
  await sleep(20)
  await redis.stop()
  const lost = await inFlight
  t.match(lost.err?.message, /connection lost/)
  t.ok(lost.ms < 300, `failed when the connection closed (${Math.round(lost.ms)} ms), not at the timeout`)
  const down = await settled(pipeline, ['PING'])
  t.match(down.err?.message, /not connected/)
  t.ok(down.ms < 20, 'while down, at once')
  await redis.restart()
  for (let i = 0; i < 40 && !pipeline.ready; i++) await sleep(50)
  t.equal(readies, 1, 'reconnected')
  t.same((await settled(pipeline, ['PING'])).reply, 'PONG')
})

t.test('REDIS_URL credentials and database number are used', async (t) => {
  const redis = await privateRedis(t)
  await withRedis(redis.url, r => r.config('SET', 'requirepass', 'p@ss w0rd'))
  const pipeline = await connected(t, `redis://:${encodeURIComponent('p@ss w0rd')}@127.0.0.1:${redis.port}/3`)
  t.same((await settled(pipeline, ['SET', 'where', 'here'])).reply, 'OK')
  const stored = await withRedis(`redis://:${encodeURIComponent('p@ss w0rd')}@127.0.0.1:${redis.port}/3`, r => r.get('where'))
  t.equal(stored, 'here', 'written to database 3 after AUTH')
  const wrong = new RedisPipeline({ url: `redis://:nope@127.0.0.1:${redis.port}`, commandTimeoutMs: 500 })
  await t.rejects(wrong.connect(), /handshake failed/, 'a wrong password fails the connect')
  await wrong.close()
})

t.test('a callback that throws fails nothing else: the rest of its write is answered, the connection stays, the error surfaces as a bug', async (t) => {
  const pipeline = await connected(t, await testRedisUrl())
  const dropped: string[] = []
  pipeline.on('dropped', (reason: string) => dropped.push(reason))
  const uncaught = new Promise<unknown>(resolve => process.prependOnceListener('uncaughtException', resolve))
  pipeline.send(['ECHO', 'first'], () => { throw new Error('a caller\'s bug') })
  const second = settled(pipeline, ['ECHO', 'second'])
  t.same([(await second).err, (await second).reply], [null, 'second'], 'the command after it, in the same write, gets its reply')
  t.match(await uncaught, { message: 'a caller\'s bug' }, 'the throw is an uncaught exception, as any bug is')
  t.same(dropped, [], 'the connection was not dropped')
  t.equal((await settled(pipeline, ['ECHO', 'third'])).reply, 'third')
})
