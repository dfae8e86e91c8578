import { stopSharedCluster } from '../helpers/redis-cluster.js'

// tap's `after`: stops the suite's shared cluster (test/setup/before.ts).
stopSharedCluster()
