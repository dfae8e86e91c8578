import fp from 'fastify-plugin'
import { createStore, describeCluster, redactRedisUrl, type AuthStore } from '../src/store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: AuthStore
  }
}

/**
 * The token store: Redis when REDIS_URL is set, a Redis Cluster when REDIS_CLUSTER_NODES is (either
 * must answer now), else the embedded memory store.
 */
export default fp(async function store (fastify) {
  const { redisUrl, redisCluster } = fastify.config
  const store = await createStore(fastify.config)
  fastify.decorate('store', store)
  fastify.addHook('onClose', async () => store.close())
  if (redisUrl === undefined && redisCluster === undefined) {
    fastify.log.warn('REDIS_URL is unset: using the embedded in-memory store (one process only; everything is lost on restart)')
  } else {
    if (redisCluster !== undefined) fastify.log.info({ redisCluster: describeCluster(redisCluster) }, 'connected to the Redis Cluster')
    else if (redisUrl !== undefined) fastify.log.info({ redis: redactRedisUrl(redisUrl) }, 'connected to Redis')
    store.onReconnect(() => fastify.log.warn('Redis connection restored'))
    store.onConnectionDropped(reason => fastify.log.warn({ reason }, 'Redis connection dropped; reconnecting'))
  }
}, { name: 'store', dependencies: ['config'] })
