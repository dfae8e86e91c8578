import t from 'tap'
import { randomId, sha256 } from '../src/ids.js'
import { RedisStore } from '../src/store/index.js'
import { RedisConnection } from '../src/store/redis-connection.js'
import { ACCESS_TTL, presented, strict, userSession } from './helpers/stores.js'
import { PrivateRedisCluster } from './helpers/redis-cluster.js'
import { TimeShiftProxy } from './helpers/time-shift-proxy.js'
import { testRedisUrl } from './helpers/redis.js'

// RedisConnection alone (no store, no HTTP): what differs between one Redis and a cluster.

t.test('a cluster: clock offsets are measured on each master, and a key gets the offset of the master serving its slot', async (t) => {
  const cluster = await PrivateRedisCluster.start()
  t.teardown(() => cluster.stop())
  // Master 0 is reached through a proxy that answers TIME as if its clock were 2 s behind ours.
  const proxy = await TimeShiftProxy.start(cluster.ports[0] as number, -2000)
  t.teardown(() => proxy.close())
  await cluster.announce(0, proxy.port)

  const connection = await RedisConnection.connect({ cluster: { ...cluster.config, nodes: [{ host: '127.0.0.1', port: cluster.ports[1] as number }] } }, () => {})
  t.teardown(() => connection.close())
  const behind = connection.clockOffset(await cluster.keyServedBy(0))
  const level = [connection.clockOffset(await cluster.keyServedBy(1)), connection.clockOffset(await cluster.keyServedBy(2))]
  t.ok(Math.abs(behind + 2000) < 50, `the shifted master's keys: ${Math.round(behind)} ms`)
  t.ok(level.every(offset => Math.abs(offset) < 50), `the other masters' keys: ${level.map(Math.round).join(', ')} ms`)
  t.ok(Math.abs(connection.clockOffset(await cluster.keyServedBy(0, 'sessions')) - behind) < 1, 'every key of the slot alike')

  // The store writes a rotation's cut-off in the clock of the master that runs it. Master 0 only
  // says it is 2 s behind (its scripts read the true time), so its cut-off comes 2 s early: the
  // rotation is refused as late there, and runs on the other masters.
  const store = await RedisStore.connect({ cluster: { ...cluster.config, nodes: [{ host: '127.0.0.1', port: cluster.ports[1] as number }] }, keyPrefix: 'clock:' })
  t.teardown(() => store.close())
  const userOf = (key: string) => /^\{user:(\d+)\}/.exec(key)?.[1] ?? ''
  const onShifted = await userSession(store, { userId: userOf(await cluster.keyServedBy(0)) })
  const onLevel = await userSession(store, { userId: userOf(await cluster.keyServedBy(1)) })
  await t.rejects(store.rotateRefreshToken(presented(onShifted), strict(sha256(randomId())), ACCESS_TTL), { name: 'StoreUnavailableError' }, 'on the master said to be behind: cut off by its clock')
  t.match(await store.rotateRefreshToken(presented(onLevel), strict(sha256(randomId())), ACCESS_TTL), { outcome: 'rotated' }, 'on another master: rotated')
})

t.test('one Redis: one offset, whatever the key', async (t) => {
  const connection = await RedisConnection.connect({ url: await testRedisUrl() }, () => {})
  t.teardown(() => connection.close())
  const offsets = ['{user:1}:account', '{user:2}:account', 'rate:api:x'].map(key => connection.clockOffset(key))
  t.ok(offsets.every(offset => offset === offsets[0] && Math.abs(offset) < 50), `${offsets.map(Math.round).join(', ')} ms`)
})
