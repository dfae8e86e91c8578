import { Cluster } from 'ioredis'
import t from 'tap'
import { PrivateRedisCluster, deleteClusterKeysUnder } from './helpers/redis-cluster.js'

// The fixture the Cluster tests stand on: three masters of our own, every slot served.

t.test('a private 3-master Redis Cluster: every slot assigned, keys spread over the masters, one hash tag on one node', async (t) => {
  const started = performance.now()
  const cluster = await PrivateRedisCluster.start()
  t.teardown(() => cluster.stop())
  t.comment(`up in ${Math.round(performance.now() - started)} ms`)
  t.equal(cluster.ports.length, 3)
  t.match(cluster.nodes, /^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/)

  const client = new Cluster(cluster.ports.map(port => ({ host: '127.0.0.1', port })))
  t.teardown(() => client.disconnect())
  const info = await client.cluster('INFO')
  t.match(info, /cluster_state:ok/)
  t.match(info, /cluster_slots_assigned:16384/)
  t.match(info, /cluster_known_nodes:3/)

  // Keys of many users land on every master; a user's keys (one hash tag) on one.
  const owners = new Set<string>()
  for (let i = 0; i < 30; i++) {
    const key = `t:{user:${i}}:account`
    await client.set(key, String(i))
    const slot = await client.cluster('KEYSLOT', key) as number
    owners.add(String(slot < 5461 ? 0 : slot < 10923 ? 1 : 2))
  }
  t.equal(owners.size, 3, 'thirty users spread over the three masters')
  t.equal(await client.cluster('KEYSLOT', 't:{user:7}:account'), await client.cluster('KEYSLOT', 't:{user:7}:deny:sid:x'), 'a user\'s keys share a slot')
  t.equal(await client.get('t:{user:7}:account'), '7', 'and are read back through the cluster')

  // The test helpers' clean-up reaches every master: keys of thirty users, in many slots.
  await client.set('other:{user:1}:account', 'kept')
  t.equal((await cluster.keysUnder('t:')).length, 30, 'keysUnder scans every master')
  await deleteClusterKeysUnder(cluster.config, 't:')
  t.same(await cluster.keysUnder('t:'), [], 'deleteClusterKeysUnder (every test\'s clean-up) deletes on every master')
  t.equal(await client.get('other:{user:1}:account'), 'kept', 'and nothing outside the prefix')
})
