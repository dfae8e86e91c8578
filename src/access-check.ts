import { InvalidAccessTokenError } from './errors.js'
import type { ExternalIdentity, ExternalTokens } from './oidc/external-tokens.js'
import type { OidcProviderConfig } from './oidc/providers.js'
import type { Principal } from './principal.js'
import type { Authenticated, TokenService } from './tokens/token-service.js'

/** The principal of a verified external access token: no session of ours, its identity's id and roles. */
export function externalPrincipal (identity: ExternalIdentity): Principal {
  return Object.freeze({ issuer: identity.provider.issuer, id: identity.id, subject: identity.subject, roles: Object.freeze(identity.roles) as string[], session: undefined })
}

/**
 * Every verifier behind one call: our own access tokens first (their exact checks and one store
 * round trip, unchanged), then, for a token ours refuses whose `iss` names a trusted provider, that
 * provider's verifier. The denylist is ours alone: external tokens are checked by their issuer's
 * keys and claims, and live as long as their issuer says.
 */
export async function authenticateAny (own: TokenService, external: ExternalTokens, token: string, options: { account: boolean }): Promise<Authenticated> {
  let provider: OidcProviderConfig | undefined
  try {
    return await own.authenticate(token, options)
  } catch (err) {
    provider = err instanceof InvalidAccessTokenError ? external.providerOf(token) : undefined
    if (provider === undefined) throw err
  }
  const identity = await external.verify(token, provider)
  const principal = externalPrincipal(identity)
  if (!options.account) return { principal }
  return { principal, account: { id: identity.id, username: identity.username, email: identity.email, roles: identity.roles } }
}
