import { Type, type Static } from 'typebox'

const SessionFields = {
  id: Type.String({ description: 'The session id: the `sid` of its access tokens' }),
  createdAt: Type.String({ format: 'date-time', description: 'The login that started it (ISO 8601)' }),
  lastUsedAt: Type.String({ format: 'date-time', description: 'Its last login or refresh; calls with its access tokens do not count' }),
  userAgent: Type.Union([Type.String({ maxLength: 256 }), Type.Null()], { description: 'The User-Agent at its last login or refresh (256 characters at most); null when none came' }),
  ip: Type.Union([Type.String(), Type.Null()], { description: 'The client address at its last login or refresh (as TRUST_PROXY allows); null when unknown' }),
}

export const UserSession = Type.Object(SessionFields, { $id: 'UserSession', description: 'A live session of a user, as an admin sees it' })
export type UserSession = Static<typeof UserSession>

export const Session = Type.Object({
  ...SessionFields,
  current: Type.Boolean({ description: 'true for the session of the access token that asked' }),
}, { $id: 'Session', description: 'A live session of the caller: one login, one rotation family' })
export type Session = Static<typeof Session>

export const SessionList = Type.Object({
  sessions: Type.Array(Type.Unsafe<Session>({ $ref: 'Session' }), { description: 'Newest first' }),
}, { $id: 'SessionList', description: 'The caller\'s live sessions' })
export type SessionList = Static<typeof SessionList>

export const UserSessionList = Type.Object({
  sessions: Type.Array(Type.Unsafe<UserSession>({ $ref: 'UserSession' }), { description: 'Newest first; empty for an unknown user' }),
}, { $id: 'UserSessionList', description: 'A user\'s live sessions' })
export type UserSessionList = Static<typeof UserSessionList>

/**
 * A session id in a path: any string, so that a malformed one gets the same 404 as an unknown one
 * (a 400 would tell ids of the right shape from others).
 */
export const SessionIdParams = Type.Object({ id: Type.String({ description: 'A session id' }) })
export const UserIdParams = Type.Object({ id: Type.String({ description: 'A user id (the `sub` of their access tokens, the `id` of their profile)' }) })

/** Longer ids in a path are none of ours: answered as unknown without asking the store. */
export const ID_MAX_LENGTH = 64
