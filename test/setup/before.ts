import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PrivateRedisCluster, SHARED_CLUSTER_FILE, stopSharedCluster, type SharedCluster } from '../helpers/redis-cluster.js'
import { SUITE_CERTIFICATES_DIR, makeCertificates } from '../helpers/tls-certificates.js'

// The suite's CA, trusted by every test process (NODE_EXTRA_CA_CERTS in package.json's tap test-env).
rmSync(SUITE_CERTIFICATES_DIR, { recursive: true, force: true })
mkdirSync(SUITE_CERTIFICATES_DIR, { recursive: true })
makeCertificates(SUITE_CERTIFICATES_DIR)

// tap's `before`: one Redis Cluster for the whole suite, so that each test file that runs flows on a
// cluster does not start its own (about 2.5 s each). Its nodes outlive this process; the file tells
// the test processes where it is, and test/setup/after.ts stops it. One an interrupted run
// left behind is stopped first. A start that fails stops what it started (and the run fails).
stopSharedCluster()
const cluster = await PrivateRedisCluster.start(3, { detached: true })
const shared: SharedCluster = { ports: cluster.ports, pids: cluster.pids, dir: cluster.dir }
mkdirSync(dirname(SHARED_CLUSTER_FILE), { recursive: true })
writeFileSync(SHARED_CLUSTER_FILE, JSON.stringify(shared))
process.exit(0)
