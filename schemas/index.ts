import { AdminResponse, Profile } from './api.js'
import { LoginBody, PasswordChangeBody, RefreshTokenBody, RevokeBody, TokenResponse } from './auth.js'
import { ErrorResponse } from './common.js'
import { HealthResponse, ReadyResponse } from './health.js'
import { IdTokenExchangeBody } from './oidc.js'
import { Session, SessionList, UserSession, UserSessionList } from './sessions.js'

/** The schemas with an `$id`, registered once by plugins/schemas.ts and referenced with ref(). */
export const SHARED_SCHEMAS = [ErrorResponse, LoginBody, PasswordChangeBody, RefreshTokenBody, RevokeBody, TokenResponse, Profile, AdminResponse, HealthResponse, ReadyResponse, Session, SessionList, UserSession, UserSessionList, IdTokenExchangeBody]
