import { BlockList, isIPv4, isIPv6 } from 'node:net'

/**
 * A client address as rate limits count it and audit lines and logs record it: a bare IPv4 address,
 * or the /64 an IPv6 address belongs to (one subscriber gets a whole /64, so counting single IPv6
 * addresses would hand each client 2^64 budgets). undefined when `raw` is not an IP address at all.
 *
 * What a proxy writes into X-Forwarded-For is not always a bare address: a port (`198.51.100.7:40001`,
 * `[2001:db8::5]:443`), brackets, a zone id (`fe80::1%eth0`), an IPv4-mapped IPv6 address. Each
 * spelling of one client must count as that client, not as a fresh one.
 */
export function normaliseAddress (raw: unknown): string | undefined {
  const parsed = parseAddress(raw)
  if (parsed === undefined || parsed.family === 'ipv4') return parsed?.address
  return ipv6Subscriber(parsed.address)
}

/**
 * The address a spelling names, exactly (no /64 grouping): the port, brackets and zone id dropped,
 * an IPv4-mapped IPv6 address as IPv4. undefined for anything that is not an IP address.
 */
export function parseAddress (raw: unknown): { address: string, family: 'ipv4' | 'ipv6' } | undefined {
  if (typeof raw !== 'string') return undefined
  if (isIPv4(raw)) return { address: raw, family: 'ipv4' }
  let address = raw.trim()
  if (address.length > 64) return undefined
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address)
  if (bracketed !== null) address = bracketed[1] ?? ''
  else if (/^[\d.]+:\d{1,5}$/.test(address)) address = address.slice(0, address.lastIndexOf(':'))
  const zone = address.indexOf('%')
  if (zone !== -1) address = address.slice(0, zone)
  if (isIPv4(address)) return { address, family: 'ipv4' }
  if (!isIPv6(address)) return undefined
  const mapped = mappedIPv4(ipv6Groups(address))
  return mapped === undefined ? { address, family: 'ipv6' } : { address: mapped, family: 'ipv4' }
}

/** proxy-addr's names for the private ranges, which TRUST_PROXY may use too. */
export const NAMED_PROXY_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

/**
 * Whether a hop is one of the trusted proxies (TRUST_PROXY: IPs, CIDRs, named ranges). Each hop is
 * parsed first, as clients are: a proxy that X-Forwarded-For names with a port or in brackets
 * (`10.0.0.6:8080`, some load balancers write that) is still that proxy, not the client.
 */
export function trustedProxies (entries: string[]): (hop: string) => boolean {
  const trusted = new BlockList()
  for (const entry of entries.flatMap(entry => Object.hasOwn(NAMED_PROXY_RANGES, entry) ? NAMED_PROXY_RANGES[entry] ?? [] : [entry])) {
    const [address = '', prefix] = entry.split('/')
    const family = isIPv4(address) ? 'ipv4' : 'ipv6'
    if (prefix === undefined) trusted.addAddress(address, family)
    else trusted.addSubnet(address, Number(prefix), family)
  }
  return function isTrusted (hop: string): boolean {
    const parsed = parseAddress(hop)
    return parsed !== undefined && trusted.check(parsed.address, parsed.family)
  }
}

/** The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for. */
function mappedIPv4 (groups: number[]): string | undefined {
  if (!groups.slice(0, 5).every(g => g === 0) || groups[5] !== 0xffff) return undefined
  const [high = 0, low = 0] = groups.slice(6)
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
}

/** An IPv6 address as its /64, in RFC 5952 form (`2001:db8::`). */
function ipv6Subscriber (address: string): string {
  const groups = ipv6Groups(address)
  const prefix = groups.slice(0, 4).map(g => g.toString(16)).join(':')
  // WHATWG URL serialises IPv6 hosts in the RFC 5952 canonical (compressed, lower-case) form.
  return new URL(`http://[${prefix}:0:0:0:0]`).hostname.slice(1, -1)
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing IPv4 part converted). */
function ipv6Groups (address: string): number[] {
  let text = address
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const parse = (part: string) => part === '' ? [] : part.split(':').map(g => parseInt(g, 16))
  const first = parse(head)
  const last = tail === undefined ? [] : parse(tail)
  return [...first, ...Array<number>(8 - first.length - last.length).fill(0), ...last]
}

/** What an HTTP request says of its client: `ip` as proxy-addr chose it (TRUST_PROXY), `ips` the chain. */
export interface AddressedRequest {
  ip: string
  /** the socket's address first, then each trusted hop's X-Forwarded-For entry, the client last */
  ips?: string[] | undefined
}

/**
 * The client's normalised address. A forwarded value that is not an IP address (garbage, a
 * hostname, an 8 000-character string) is replaced by the address of the hop that sent it, which
 * is a trusted proxy or the socket's peer: never a key of the client's choosing, never a 400
 * (health checkers and probes send odd headers too).
 */
export function clientAddress (request: AddressedRequest): string {
  const address = normaliseAddress(request.ip)
  if (address !== undefined) return address
  const chain = request.ips ?? []
  for (let i = chain.length - 2; i >= 0; i--) {
    const hop = normaliseAddress(chain[i] ?? '')
    if (hop !== undefined) return hop
  }
  return 'unknown'
}
