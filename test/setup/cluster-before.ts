import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PrivateRedisCluster, SHARED_CLUSTER_FILE, stopSharedCluster, type SharedCluster } from '../helpers/redis-cluster.js'

// tap's `before`: one Redis Cluster for the whole suite, so that each test file that runs flows on a
// cluster does not start its own (about 2.5 s each). Its nodes outlive this process; the file tells
// the test processes where it is, and test/setup/cluster-after.ts stops it. One an interrupted run
// left behind is stopped first. A start that fails stops what it started (and the run fails).
stopSharedCluster()
const cluster = await PrivateRedisCluster.start(3, { detached: true })
const shared: SharedCluster = { ports: cluster.ports, pids: cluster.pids, dir: cluster.dir }
mkdirSync(dirname(SHARED_CLUSTER_FILE), { recursive: true })
writeFileSync(SHARED_CLUSTER_FILE, JSON.stringify(shared))
process.exit(0)
