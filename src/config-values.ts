import { BlockList, isIP } from 'node:net'
import { NAMED_PROXY_RANGES, parseAddress } from './client-address.js'
import { ConfigError } from './config-error.js'

// The variables whose values are lists or addresses, each checked and parsed on its own (loadConfig
// in config.ts combines them).

export interface RedisClusterConfig {
  /** the nodes to discover the cluster from (any of them will do; the rest is learnt from it) */
  nodes: Array<{ host: string, port: number }>
  username: string | undefined
  password: string | undefined
  tls: boolean
}

export interface RedisClusterEnv {
  REDIS_CLUSTER_NODES?: string | undefined
  REDIS_CLUSTER_USERNAME?: string | undefined
  REDIS_CLUSTER_PASSWORD?: string | undefined
  REDIS_CLUSTER_TLS: boolean
}

/**
 * TRUST_PROXY is an allow-list of proxy addresses: IPs, CIDRs or proxy-addr's range names. Never a
 * hop count and never `true`: those would trust whatever X-Forwarded-For a client sends.
 */
export function parseTrustProxy (value: string): string[] {
  const entries = splitList(value)
  for (const entry of entries) {
    if (Object.hasOwn(NAMED_PROXY_RANGES, entry)) continue
    const [address = '', prefix, extra] = entry.split('/')
    const version = isIP(address)
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (version === 6 ? 128 : 32))
    if (version === 0 || !prefixOk || extra !== undefined) {
      throw new ConfigError(`TRUST_PROXY: '${entry}' is not an IP address or CIDR range (a comma-separated allow-list of proxies; never a hop count or 'true')`)
    }
    // A range as wide as a /0 trusts every peer, the same as `true`; no proxy fleet needs more than
    // an IPv4 /8. An IPv6 range may cover IPv4 peers too (through the IPv4-mapped block ::ffff:0:0/96).
    if (ipv4PrefixCovered(address, version, prefix === undefined ? undefined : Number(prefix)) < 8) {
      throw new ConfigError(`TRUST_PROXY: '${entry}' trusts a range wider than an IPv4 /8 (a client anywhere in it could choose its own address); list your proxies' addresses or subnets`)
    }
  }
  return entries
}

/** The IPv4 prefix length of what an entry trusts of the IPv4 space (33 when it trusts none of it). */
function ipv4PrefixCovered (address: string, version: number, prefix: number | undefined): number {
  if (version === 4) return prefix ?? 32
  const bits = prefix ?? 128
  const ranges = new BlockList()
  ranges.addSubnet(address, bits, 'ipv6')
  if (ranges.check('::ffff:0.0.0.0', 'ipv6') && ranges.check('::ffff:255.255.255.255', 'ipv6')) return 0
  // A range inside the mapped block: ::ffff:a.b.c.d/p is the IPv4 a.b.c.d/(p - 96).
  return parseAddress(address)?.family === 'ipv4' ? Math.max(0, bits - 96) : 33
}

/**
 * CORS_ORIGINS: exact origins (scheme://host[:port]), compared as browsers send them in `Origin`.
 * A path, a wildcard or a typo would silently never match, so each must already be in that form.
 */
export function parseOrigins (value: string, variable = 'CORS_ORIGINS'): string[] {
  return splitList(value).map(entry => {
    let origin: string | undefined
    try {
      origin = new URL(entry).origin
    } catch {}
    if (origin !== entry || !/^https?:\/\//.test(entry) || entry.includes('*')) {
      throw new ConfigError(`${variable}: '${entry}' is not an origin like https://app.example.com (scheme, host and port only${origin === undefined || origin === 'null' ? '' : `; did you mean ${origin}?`})`)
    }
    return origin
  })
}

/** One exact origin (PUBLIC_ORIGIN), in the form parseOrigins accepts. */
export function parseOrigin (value: string, variable: string): string {
  const origins = parseOrigins(value, variable)
  if (origins.length !== 1) throw new ConfigError(`${variable}: one origin like https://api.example.com, not a list`)
  return origins[0] as string
}

/**
 * REDIS_CLUSTER_NODES: host:port entries ([v6]:port for IPv6). Credentials and TLS are variables of
 * their own, the same for every node, so the list never holds a secret and can be logged.
 */
export function parseRedisCluster (env: RedisClusterEnv): RedisClusterConfig | undefined {
  const extras = (['REDIS_CLUSTER_USERNAME', 'REDIS_CLUSTER_PASSWORD'] as const).filter(name => env[name] !== undefined)
  if (env.REDIS_CLUSTER_NODES === undefined) {
    const stray = [...extras, ...(env.REDIS_CLUSTER_TLS ? ['REDIS_CLUSTER_TLS'] : [])]
    if (stray.length > 0) throw new ConfigError(`${stray.join(', ')} without REDIS_CLUSTER_NODES: set the cluster's nodes, or unset ${stray.length > 1 ? 'them' : 'it'}`)
    return undefined
  }
  const nodes = splitList(env.REDIS_CLUSTER_NODES).map((entry, index) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry)
    const host = match?.[1] ?? match?.[2]
    const port = Number(match?.[3])
    if (host === undefined || !(port >= 1 && port <= 65535) || (match?.[1] !== undefined && isIP(host) !== 6)) {
      // The entry itself is not shown: what is not host:port may be anything, a password included.
      throw new ConfigError(`REDIS_CLUSTER_NODES: entry ${index + 1} is not host:port (a comma-separated list; credentials go in REDIS_CLUSTER_USERNAME / REDIS_CLUSTER_PASSWORD, TLS in REDIS_CLUSTER_TLS)`)
    }
    return { host, port }
  })
  if (nodes.length === 0) throw new ConfigError('REDIS_CLUSTER_NODES: no node given (host:port, comma-separated)')
  if (env.REDIS_CLUSTER_USERNAME !== undefined && env.REDIS_CLUSTER_PASSWORD === undefined) {
    throw new ConfigError('REDIS_CLUSTER_USERNAME needs REDIS_CLUSTER_PASSWORD (an ACL user signs in with both)')
  }
  return { nodes, username: env.REDIS_CLUSTER_USERNAME, password: env.REDIS_CLUSTER_PASSWORD, tls: env.REDIS_CLUSTER_TLS }
}

export function splitList (value: string): string[] {
  return value.split(',').map(s => s.trim()).filter(s => s !== '')
}
