import { Type, type Static } from 'typebox'
import { PASSWORD_MAX, USERNAME_MAX } from '../src/users.js'

export const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: USERNAME_MAX }),
  password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }),
})
export type LoginBody = Static<typeof LoginBody>

/** `X-Auth-Mode: cookie` on login selects cookie transport; `body` (the default) keeps tokens in JSON. */
export const AuthModeHeaders = Type.Object({
  'x-auth-mode': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')])),
})

/**
 * The refresh token in the body; optional because browsers send it as the `refresh_token` cookie.
 * A string of the wrong shape is a 401 like any other invalid token, not a 400.
 */
export const RefreshTokenBody = Type.Object({
  refresh_token: Type.Optional(Type.String({ maxLength: 256 })),
})
export type RefreshTokenBody = Static<typeof RefreshTokenBody>

export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  /** seconds */
  expires_in: Type.Integer(),
  /** absent in cookie mode: the refresh token then lives only in its HttpOnly cookie */
  refresh_token: Type.Optional(Type.String()),
})
export type TokenResponse = Static<typeof TokenResponse>
