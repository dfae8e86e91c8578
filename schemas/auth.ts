import { Type, type Static } from 'typebox'
import { PASSWORD_MAX, USERNAME_MAX } from '../src/users.js'

export const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: USERNAME_MAX, description: 'Matched exactly (case and spaces count)' }),
  password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }),
}, {
  $id: 'LoginRequest',
  description: 'Credentials of a user',
  examples: [{ username: 'demo', password: 'demo-password' }],
})
export type LoginBody = Static<typeof LoginBody>

/** `X-Auth-Mode: cookie` on login selects cookie transport; `body` (the default) keeps tokens in JSON. */
export const AuthModeHeaders = Type.Object({
  'x-auth-mode': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')], {
    description: '`cookie` (browsers): both tokens are set as HttpOnly cookies and the refresh token is left out of the body. ' +
      '`body` (the default: mobile and REST clients): both tokens come back in the JSON body.',
  })),
})

/**
 * The refresh token in the body; optional because browsers send it as the `refresh_token` cookie.
 * A string of the wrong shape is a 401 like any other invalid token, not a 400.
 */
export const RefreshTokenBody = Type.Object({
  refresh_token: Type.Optional(Type.String({
    maxLength: 256,
    description: 'The refresh token from the last login or refresh. Leave it out to use the `refresh_token` cookie instead.',
  })),
}, {
  $id: 'RefreshRequest',
  description: 'A refresh token, unless the `refresh_token` cookie carries it',
  examples: [{ refresh_token: 'He07cKPU57kCCxaeHBrPMB.Cxpo79K33Vx-uy66Lu20ow.vK96j1aS1NzFnd1JW-8Xw-FztFRSsKEb1TMlSmkj9hk' }],
})
export type RefreshTokenBody = Static<typeof RefreshTokenBody>

export const TokenResponse = Type.Object({
  access_token: Type.String({ description: 'A JWT (HS256, `typ: at+jwt`) to send as `Authorization: Bearer`' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.Optional(Type.String({
    description: 'Opaque, single use: spend it at /auth/refresh for a new pair. Absent in cookie mode, where it lives only in its HttpOnly cookie.',
  })),
}, {
  $id: 'TokenPair',
  description: 'A new access token and, in body mode, a new refresh token',
  examples: [{
    access_token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl',
    token_type: 'Bearer',
    expires_in: 900,
    refresh_token: 'He07cKPU57kCCxaeHBrPMB.Cxpo79K33Vx-uy66Lu20ow.vK96j1aS1NzFnd1JW-8Xw-FztFRSsKEb1TMlSmkj9hk',
  }],
})
export type TokenResponse = Static<typeof TokenResponse>

/** New passwords are at least this long (those of USERS_FILE are the operator's business). */
export const NEW_PASSWORD_MIN = 12

export const PasswordChangeBody = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX, description: 'The password now' }),
  new_password: Type.String({ minLength: NEW_PASSWORD_MIN, maxLength: PASSWORD_MAX, description: `At least ${NEW_PASSWORD_MIN} characters` }),
}, {
  $id: 'PasswordChangeRequest',
  description: 'The password now, and the one to replace it',
  examples: [{ current_password: 'demo-password', new_password: 'a much longer passphrase' }],
})
export type PasswordChangeBody = Static<typeof PasswordChangeBody>

/** RFC 7009 §2.1: the token to revoke, and optionally what kind it is. */
export const RevokeBody = Type.Object({
  token: Type.String({ description: 'A refresh token (its session ends) or an access token (denied until it expires; its session lives on); anything else is answered the same' }),
  token_type_hint: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: '`refresh_token` or `access_token`; not needed (the two differ in shape), and ignored' })),
}, {
  $id: 'RevokeRequest',
  description: 'RFC 7009 revocation request, as JSON or as `application/x-www-form-urlencoded`',
  examples: [{ token: 'He07cKPU57kCCxaeHBrPMB.Cxpo79K33Vx-uy66Lu20ow.vK96j1aS1NzFnd1JW-8Xw-FztFRSsKEb1TMlSmkj9hk', token_type_hint: 'refresh_token' }],
})
export type RevokeBody = Static<typeof RevokeBody>
