/**
 * Lua scripts: each runs atomically on one Redis (and, since all its keys share the user's hash
 * tag, on one Cluster slot). KEYS are always passed explicitly, never built inside the script.
 */

/**
 * KEYS: session, index, account
 * ARGV: refreshHash, expiresAt (epoch ms), sessionId, maxSessionsPerUser, maxExpiresAt, createdAt,
 *       userAgent, ip ('' when absent), verifiedPasswordHash ('' checks nothing)
 * → the ids of the user's oldest sessions beyond the bound (the caller ends them); nil, creating
 *   nothing, when the account's password hash is no longer the one the login verified
 *
 * The index (a sorted set: session id by expiry) drops what has expired and lives as long as the
 * longest-lived session in it.
 */
export const CREATE_SESSION = `
if ARGV[9] ~= '' and redis.call('HGET', KEYS[3], 'passwordHash') ~= ARGV[9] then return false end
redis.call('HSET', KEYS[1], 'refresh', ARGV[1], 'expiresAt', ARGV[2], 'maxExpiresAt', ARGV[5],
  'createdAt', ARGV[6], 'lastUsedAt', ARGV[6], 'userAgent', ARGV[7], 'ip', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
local time = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess <= 0 then return {} end
return redis.call('ZRANGE', KEYS[2], 0, excess - 1)
`

/**
 * KEYS: session, spent, deniedSession, account, index, replay
 * ARGV: presentedHash, nextHash, accessTokenTtl (s), deadline (Redis clock, epoch ms), sessionId,
 *       spentKept, sealedNext, graceMs, idleMs ('' keeps the expiry), hasClient ('1'/'0'),
 *       userAgent, ip, epoch (the account's epoch if it has none yet)
 * → {'rotated', expiresAtMs, rolesJson, '', epoch} | {'replayed', expiresAtMs, rolesJson, sealedSuccessor, epoch}
 *   | {'reused'} | {'invalid'} | {'late'}
 *
 * A rotation moves the session's expiry to now + idleMs, never past its `maxExpiresAt` (a session
 * from before that field keeps its expiry), with its spent list and its place in the index, and
 * records when and by whom it was used. An ended session's denial (`deniedSession`) is its
 * tombstone: nothing rotates while it stands.
 *
 * The account's roles come back with the rotation, so the new access token needs no second round
 * trip (a failure between the two could spend a token whose caller then hears 503). A session whose
 * account is gone is revoked.
 *
 * 'late': the script ran after its caller gave up waiting (a stalled Redis waking up). It then changes
 * nothing, so the client that was told 503 can retry with the same token instead of tripping reuse.
 *
 * `spent` is a list of the session's last `spentKept` spent hashes, newest first: reuse of any of
 * them revokes the session; an older one is merely invalid, so a session's size stays bounded.
 *
 * Grace window (graceMs > 0): a rotation leaves `replay` = "spentHash|successorHash|sealedSuccessor"
 * for graceMs. The spent token presented again while its successor is still the live token is
 * answered 'replayed' with the sealed successor (only the spent token can open it): the same
 * successor for every replay, never a second chain. After the window, or once the successor is spent
 * (the next rotation replaces the record), it is reuse.
 */
export const ROTATE_REFRESH_TOKEN = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if now > tonumber(ARGV[4]) then return {'late'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'invalid'} end
local function revoke ()
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[6])
  redis.call('ZREM', KEYS[5], ARGV[5])
  local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', KEYS[5], last[2]) else redis.call('DEL', KEYS[5]) end
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
end
local live = redis.call('HGET', KEYS[1], 'refresh')
if not live then return {'invalid'} end
local replay = nil
if live ~= ARGV[1] then
  local record = redis.call('GET', KEYS[6])
  if record then
    local spentHash, successorHash, sealed = string.match(record, '^([^|]+)|([^|]+)|(.+)$')
    if spentHash == ARGV[1] and successorHash == live then replay = sealed end
  end
end
if live == ARGV[1] or replay then
  local roles = redis.call('HGET', KEYS[4], 'roles')
  if not roles then
    revoke()
    return {'invalid'}
  end
  -- An account from before epochs gets one now (docs/decisions.md, "Store loss").
  local epoch = redis.call('HGET', KEYS[4], 'epoch')
  if not epoch then
    epoch = ARGV[13]
    redis.call('HSET', KEYS[4], 'epoch', epoch)
  end
  local expiresAt = tonumber(redis.call('HGET', KEYS[1], 'expiresAt'))
  if replay then return {'replayed', expiresAt, roles, replay, epoch} end
  if ARGV[9] ~= '' then
    local bound = tonumber(redis.call('HGET', KEYS[1], 'maxExpiresAt') or expiresAt)
    expiresAt = math.min(now + tonumber(ARGV[9]), bound)
    redis.call('HSET', KEYS[1], 'expiresAt', expiresAt)
    redis.call('PEXPIREAT', KEYS[1], expiresAt)
    redis.call('ZADD', KEYS[5], 'XX', expiresAt, ARGV[5])
    local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
    if last[2] then redis.call('PEXPIREAT', KEYS[5], last[2]) end
  end
  redis.call('HSET', KEYS[1], 'refresh', ARGV[2], 'lastUsedAt', now)
  if ARGV[10] == '1' then redis.call('HSET', KEYS[1], 'userAgent', ARGV[11], 'ip', ARGV[12]) end
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
  redis.call('PEXPIREAT', KEYS[2], expiresAt)
  if tonumber(ARGV[8]) > 0 then
    -- The window, but never past the session itself.
    redis.call('SET', KEYS[6], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[7], 'PXAT', math.min(now + tonumber(ARGV[8]), expiresAt))
  else
    redis.call('DEL', KEYS[6])
  end
  return {'rotated', expiresAt, roles, '', epoch}
end
if redis.call('LPOS', KEYS[2], ARGV[1]) then
  revoke()
  return {'reused'}
end
return {'invalid'}
`

/**
 * KEYS: session, spent, deniedSession, index, replay
 * ARGV: presentedHash, accessTokenTtl (s), sessionId
 * → 1 when the token belonged to the session (live, or one of its last spent) and it was revoked, else 0
 */
export const REVOKE_BY_REFRESH_TOKEN = `
local live = redis.call('HGET', KEYS[1], 'refresh')
if not live then return 0 end
if live ~= ARGV[1] and not redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[4], ARGV[3])
local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[4], last[2]) else redis.call('DEL', KEYS[4]) end
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

/**
 * KEYS: deniedSession, deniedToken, account; ARGV: '1' to read the whole account, '0' for its epoch
 * → {1} when denied, else {0, id, epoch[, username, email, roles]} (nils for an account that does not
 * exist, or an epoch it does not have yet). The hot path's one read: denylist and account share the
 * user's hash tag, so one script answers both.
 */
export const CHECK_ACCESS = `
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return {1} end
if ARGV[1] == '1' then
  local account = redis.call('HMGET', KEYS[3], 'id', 'epoch', 'username', 'email', 'roles')
  return {0, account[1], account[2], account[3], account[4], account[5]}
end
local account = redis.call('HMGET', KEYS[3], 'id', 'epoch')
return {0, account[1], account[2]}
`

/**
 * KEYS: account; ARGV: epoch → the account's epoch, set to ARGV's if it had none (an account from
 * before epochs); nil when the account does not exist.
 */
/**
 * KEYS: account; ARGV: id, username, email, roles (JSON), epoch → the account's epoch.
 * An external identity's account: created without a password, its profile updated at each sign-in.
 */
export const SAVE_EXTERNAL_ACCOUNT = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'id', ARGV[1], 'passwordHash', '') end
redis.call('HSET', KEYS[1], 'username', ARGV[2], 'email', ARGV[3], 'roles', ARGV[4])
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[5])
return redis.call('HGET', KEYS[1], 'epoch')
`

export const ENSURE_EPOCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return redis.call('HGET', KEYS[1], 'epoch')
`

/**
 * KEYS: session, spent, deniedSession, index, replay
 * ARGV: accessTokenTtl (s), sessionId
 * → 1 when the session was live and is now ended (its access tokens denied), else 0
 */
export const END_SESSION = `
redis.call('ZREM', KEYS[4], ARGV[2])
-- The index lives no longer than the longest-lived session left in it.
local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[4], last[2]) else redis.call('DEL', KEYS[4]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[1])
return 1
`

/**
 * KEYS: account
 * ARGV: expectedHash, newHash
 * → 1 when the account's password hash was expectedHash and is now newHash; 0 otherwise (the
 *   account is gone, or its password changed since the caller checked it)
 */
export const REPLACE_PASSWORD_HASH = `
if redis.call('HGET', KEYS[1], 'passwordHash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'passwordHash', ARGV[2])
return 1
`

/** KEYS: index → the index lives no longer than the longest-lived session left in it (gone when empty). */
export const RETIME_INDEX = `
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) else redis.call('DEL', KEYS[1]) end
return 1
`
