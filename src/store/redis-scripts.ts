/**
 * Lua scripts: each runs atomically on one Redis (and, since all its keys share the user's hash
 * tag, on one Cluster slot). KEYS are always passed explicitly, never built inside the script.
 */

/**
 * KEYS: session, spent, deniedSession, account
 * ARGV: presentedHash, nextHash, accessTokenTtl (s), deadline (Redis clock, epoch ms)
 * → {'rotated', expiresAtMs, rolesJson} | {'reused'} | {'invalid'} | {'late'}
 *
 * The account's roles come back with the rotation, so the new access token needs no second round
 * trip (a failure between the two could spend a token whose caller then hears 503). A session whose
 * account is gone is revoked.
 *
 * 'late': the script ran after its caller gave up waiting (a stalled Redis waking up). It then changes
 * nothing, so the client that was told 503 can retry with the same token instead of tripping reuse.
 */
export const ROTATE_REFRESH_TOKEN = `
local time = redis.call('TIME')
if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(ARGV[4]) then return {'late'} end
local live = redis.call('HGET', KEYS[1], 'refresh')
if not live then return {'invalid'} end
if live == ARGV[1] then
  local roles = redis.call('HGET', KEYS[4], 'roles')
  if not roles then
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
    return {'invalid'}
  end
  local expiresAt = redis.call('HGET', KEYS[1], 'expiresAt')
  redis.call('HSET', KEYS[1], 'refresh', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[2], expiresAt)
  return {'rotated', expiresAt, roles}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
  return {'reused'}
end
return {'invalid'}
`

/**
 * KEYS: session, spent, deniedSession
 * ARGV: presentedHash, accessTokenTtl (s)
 * → 1 when the token belonged to the session and it was revoked, else 0
 */
export const REVOKE_BY_REFRESH_TOKEN = `
local live = redis.call('HGET', KEYS[1], 'refresh')
if not live then return 0 end
if live ~= ARGV[1] and redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
return 1
`

/**
 * KEYS: account
 * ARGV: field, value, field, value, ...
 * → 1 when created, 0 when an account already existed (it keeps its password)
 */
export const CREATE_USER_IF_ABSENT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`
