import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError } from '../config-error.js'

/** Signature algorithms an external provider may use: asymmetric only (see `algorithms` below). */
export const EXTERNAL_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const
export type ExternalAlgorithm = typeof EXTERNAL_ALGORITHMS[number]

/** A trusted OpenID Connect provider, as OIDC_PROVIDERS_FILE describes it, defaults applied. */
export interface OidcProviderConfig {
  /** lowercase [a-z0-9-]+, used in URLs (/auth/oidc/{name}/...) */
  name: string
  /** the exact `iss` of its tokens; discovery at <issuer without trailing slash>/.well-known/openid-configuration */
  issuer: string
  /** set: its access tokens with this `aud` are accepted on protected routes; unset: sign-in only */
  audience: string | undefined
  /** set: users may sign in through it (browser code flow, mobile ID-token exchange) */
  clientId: string | undefined
  /** unset with a clientId: a public client (PKCE only) */
  clientSecret: string | undefined
  /** the claim holding the user's roles (a URL-like name such as https://example.com/roles is fine) */
  rolesClaim: string
  /** external role → ours; when set, unmapped values are dropped */
  roleMap: Record<string, string> | undefined
  defaultRoles: string[]
  algorithms: ExternalAlgorithm[]
}

const ProviderEntry = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
  issuer: Type.String({ minLength: 1, maxLength: 2048 }),
  audience: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  clientSecret: Type.Optional(Type.String({ minLength: 1 })),
  clientSecretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
  rolesClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  roleMap: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 64 }))),
  defaultRoles: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
  algorithms: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 16 })),
}, { additionalProperties: false })
const ProvidersFile = Type.Array(ProviderEntry, { maxItems: 64 })

const refuse = (message: string): ConfigError => new ConfigError(`OIDC_PROVIDERS_FILE: ${message}`)

/**
 * Reads and checks OIDC_PROVIDERS_FILE (unset: no providers). Messages name the file, the entry and
 * the field, never a value from the file (a secret may be in it). `environment` resolves
 * `clientSecretEnv`; production refuses an issuer that is not https.
 */
export function loadOidcProviders (path: string | undefined, environment: NodeJS.ProcessEnv, isProduction: boolean): OidcProviderConfig[] {
  if (path === undefined) return []
  let data: unknown
  try {
    data = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw refuse(code === undefined ? `${path} is not valid JSON` : `cannot read ${path} (${code})`)
  }
  if (!Value.Check(ProvidersFile, data)) {
    const [first] = Value.Errors(ProvidersFile, data)
    throw refuse(`${path} is not a valid providers file: ${first?.instancePath ?? ''} ${first?.message ?? ''}`.trim())
  }
  const providers = data.map((entry, index) => provider(entry, `entry ${index} ('${entry.name}')`, environment, isProduction))
  for (const key of ['name', 'issuer'] as const) {
    const seen = new Set<string>()
    for (const entry of providers) {
      // One issuer, one provider: a token's `iss` must pick exactly one.
      const value = key === 'issuer' ? withoutTrailingSlash(entry.issuer) : entry.name
      if (seen.has(value)) throw refuse(`two providers have the ${key} of '${entry.name}'`)
      seen.add(value)
    }
  }
  return providers
}

function provider (entry: Static<typeof ProviderEntry>, where: string, environment: NodeJS.ProcessEnv, isProduction: boolean): OidcProviderConfig {
  let issuer: URL | undefined
  try {
    issuer = new URL(entry.issuer)
  } catch {}
  if (issuer === undefined || !['https:', 'http:'].includes(issuer.protocol) || issuer.search !== '' || issuer.hash !== '' || issuer.username !== '' || issuer.password !== '') {
    throw refuse(`${where}: issuer must be an https URL without query, fragment or credentials`)
  }
  if (isProduction && issuer.protocol !== 'https:') throw refuse(`${where}: production requires an https issuer`)
  const algorithms = entry.algorithms ?? ['RS256']
  for (const algorithm of algorithms) {
    if (algorithm === 'none' || /^HS\d+$/.test(algorithm)) {
      throw refuse(`${where}: algorithm ${algorithm} is refused (a token signed with a shared secret, or not at all, could be forged from what the provider publishes)`)
    }
    if (!(EXTERNAL_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw refuse(`${where}: algorithm ${algorithm} is not one of ${EXTERNAL_ALGORITHMS.join(', ')}`)
    }
  }
  if (entry.clientSecret !== undefined && entry.clientSecretEnv !== undefined) throw refuse(`${where}: clientSecret and clientSecretEnv are both set; give one`)
  let clientSecret = entry.clientSecret
  if (entry.clientSecretEnv !== undefined) {
    clientSecret = environment[entry.clientSecretEnv]
    if (clientSecret === undefined || clientSecret === '') throw refuse(`${where}: clientSecretEnv names ${entry.clientSecretEnv}, which is not set`)
  }
  if (clientSecret !== undefined && entry.clientId === undefined) throw refuse(`${where}: a client secret without clientId`)
  if (entry.audience === undefined && entry.clientId === undefined) {
    throw refuse(`${where}: neither audience (accept its access tokens) nor clientId (sign in through it): it would do nothing`)
  }
  return {
    name: entry.name,
    issuer: entry.issuer,
    audience: entry.audience,
    clientId: entry.clientId,
    clientSecret,
    rolesClaim: entry.rolesClaim ?? 'roles',
    roleMap: entry.roleMap,
    defaultRoles: entry.defaultRoles ?? ['user'],
    algorithms: algorithms as ExternalAlgorithm[],
  }
}

function withoutTrailingSlash (issuer: string): string {
  return issuer.endsWith('/') ? issuer.slice(0, -1) : issuer
}
