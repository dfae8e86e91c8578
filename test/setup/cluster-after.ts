import { readFileSync, rmSync } from 'node:fs'
import { SHARED_CLUSTER_FILE, type SharedCluster } from '../helpers/redis-cluster.js'

// tap's `after`: stops the suite's shared cluster (test/setup/cluster-before.ts).
try {
  const shared = JSON.parse(readFileSync(SHARED_CLUSTER_FILE, 'utf8')) as SharedCluster
  for (const pid of shared.pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  rmSync(shared.dir, { recursive: true, force: true })
} catch {
  // nothing was started
}
rmSync(SHARED_CLUSTER_FILE, { force: true })
