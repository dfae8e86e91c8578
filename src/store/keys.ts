/**
 * Redis key layout. Every key of a user shares the hash tag `{user:<id>}` so that multi-key scripts
 * run on one Redis Cluster slot. The prefix (REDIS_KEY_PREFIX, default `auth:`) namespaces the whole
 * product in a shared Redis.
 */
/**
 * The keys an access check reads — the session's denial, the token's, the account — as keysFor names
 * them, without building its whole set on the hot path.
 */
export function accessCheckKeys (prefix: string, userId: string, sessionId: string, tokenId: string): [string, string, string] {
  const base = `${prefix}{user:${userId}}`
  return [`${base}:deny:sid:${sessionId}`, `${base}:deny:jti:${tokenId}`, `${base}:account`]
}

/** A browser sign-in under way (src/oidc/sign-in.ts): no user's yet, so under no user's hash tag. */
export function signInAttemptKey (prefix: string, id: string): string {
  return `${prefix}oidc-sign-in:${id}`
}

export function keysFor (prefix: string, userId: string) {
  const base = `${prefix}{user:${userId}}`
  return {
    account: `${base}:account`,
    session: (sessionId: string) => `${base}:session:${sessionId}`,
    /** sessions by expiry (a sorted set), so an account's sessions can be counted and bounded */
    sessions: `${base}:sessions`,
    /** the session's last spent refresh-token hashes, newest first (a list; `spent:` was a set before) */
    spent: (sessionId: string) => `${base}:spent-recent:${sessionId}`,
    /** the last rotation's sealed successor, for replays within the grace window (expires with it) */
    replay: (sessionId: string) => `${base}:replay:${sessionId}`,
    deniedSession: (sessionId: string) => `${base}:deny:sid:${sessionId}`,
    deniedToken: (tokenId: string) => `${base}:deny:jti:${tokenId}`,
  }
}
