import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PrivateRedisCluster, sharedClusterFile, stopOrphanedSharedClusters, type SharedCluster } from '../helpers/redis-cluster.js'
import { SUITE_CERTIFICATES_DIR, makeCertificates, suiteCertificates } from '../helpers/tls-certificates.js'

// The suite's CA, trusted by every test process (NODE_EXTRA_CA_CERTS in package.json's tap test-env).
// Made again only when missing or half a day old (its certificates last a day): a run going on in
// this checkout keeps trusting the one it started with.
const caAge = (() => {
  try {
    return Date.now() - statSync(suiteCertificates().cert).mtimeMs
  } catch {
    return Infinity
  }
})()
if (caAge > 12 * 3_600_000) {
  rmSync(SUITE_CERTIFICATES_DIR, { recursive: true, force: true })
  mkdirSync(SUITE_CERTIFICATES_DIR, { recursive: true })
  makeCertificates(SUITE_CERTIFICATES_DIR)
}

// tap's `before`: one Redis Cluster for the whole suite, so that each test file that runs flows on a
// cluster does not start its own (about 2.5 s each). Its nodes outlive this process; the file tells
// the test processes where it is, and test/setup/after.ts stops it. Each run has its own, named after
// its tap runner; those of runs that are gone (interrupted) are stopped first. A start that fails
// stops what it started (and the run fails).
stopOrphanedSharedClusters()
const cluster = await PrivateRedisCluster.start(3, { detached: true })
const shared: SharedCluster = { ports: cluster.ports, pids: cluster.pids, dir: cluster.dir }
mkdirSync(dirname(sharedClusterFile()), { recursive: true })
writeFileSync(sharedClusterFile(), JSON.stringify(shared))
process.exit(0)
