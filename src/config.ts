import { randomBytes, type KeyObject } from 'node:crypto'
import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import { loadPrivateKey, loadVerifyKeys, type SigningAlgorithm } from './tokens/signing-key.js'

import { ConfigError } from './config-error.js'
import { parseOrigin, parseOrigins, parseRedisCluster, parseTrustProxy, type RedisClusterConfig } from './config-values.js'
import { loadOidcProviders, type OidcProviderConfig } from './oidc/providers.js'

export { ConfigError }
export type { RedisClusterConfig }

const Seconds = (defaultValue: number) => Type.Integer({ minimum: 1, maximum: 31_536_000, default: defaultValue })
const PerMinute = (defaultValue: number) => Type.Integer({ minimum: 0, maximum: 1_000_000, default: defaultValue })

// The environment variables the API reads (docs/api.md and the README list them).
const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String()),
  REDIS_CLUSTER_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_CLUSTER_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_CLUSTER_TLS: Type.Boolean({ default: false }),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'auth:' }),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_ALGORITHM: Type.Union(['HS256', 'EdDSA', 'ES256', 'RS256'].map(a => Type.Literal(a)), { default: 'HS256' }),
  JWT_PRIVATE_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_VERIFY_KEYS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_PREVIOUS_SECRETS: Type.String({ default: '' }),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'token-auth-api' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'token-auth-api' }),
  ACCESS_TOKEN_TTL: Seconds(900),
  REFRESH_TOKEN_TTL: Seconds(604_800),
  SESSION_MAX_AGE: Seconds(2_592_000),
  USERS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  CORS_ORIGINS: Type.String({ default: '' }),
  OIDC_PROVIDERS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_RETURN_ORIGINS: Type.String({ default: '' }),
  PUBLIC_ORIGIN: Type.Optional(Type.String({ minLength: 1 })),
  RATE_LIMIT_MAX: PerMinute(1000),
  RATE_LIMIT_LOGIN_MAX: PerMinute(5),
  RATE_LIMIT_REFRESH_MAX: PerMinute(60),
  SESSIONS_PER_USER_MAX: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  REFRESH_REUSE_GRACE: Type.Integer({ minimum: 0, maximum: 3600, default: 30 }),
  HTTP_HEADERS_TIMEOUT: Type.Integer({ minimum: 1, maximum: 3600, default: 10 }),
  HTTP_REQUEST_TIMEOUT: Type.Integer({ minimum: 1, maximum: 3600, default: 15 }),
  HTTP_KEEP_ALIVE_TIMEOUT: Type.Integer({ minimum: 1, maximum: 3600, default: 72 }),
  HTTP_MAX_REQUESTS_PER_SOCKET: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  HTTP_MAX_CONNECTIONS: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10_000 }),
  TRUST_PROXY: Type.Optional(Type.String()),
  DOCS_ENABLED: Type.Optional(Type.Boolean()),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
})

/** Every variable the API reads, by name (.env.example lists each; test/compose.test.ts checks it). */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties)
type Env = Static<typeof EnvSchema>

export interface Config {
  env: 'development' | 'production' | 'test'
  isProduction: boolean
  port: number
  host: string
  /** unset (and no redisCluster): the embedded in-memory store */
  redisUrl: string | undefined
  /** REDIS_CLUSTER_NODES and its credentials: a Redis Cluster instead of one Redis */
  redisCluster: RedisClusterConfig | undefined
  redisKeyPrefix: string
  jwt: {
    secret: Buffer
    /** true when no JWT_SECRET was given and a random one was made for this process */
    secretGenerated: boolean
    /** secrets tokens still verify with while they are retired (JWT_PREVIOUS_SECRETS); never used to sign */
    previousSecrets: Buffer[]
    /** HS256 signs with `secret`; the others with `privateKey` (JWT_PRIVATE_KEY_FILE) */
    algorithm: SigningAlgorithm
    privateKey: KeyObject | undefined
    /** public keys that verify (and are published) besides the signing key: JWT_VERIFY_KEYS_FILE */
    verifyKeys: Array<{ algorithm: SigningAlgorithm, key: KeyObject }>
    issuer: string
    audience: string
  }
  accessTokenTtl: number
  /** seconds: a session unused this long ends (each refresh extends it by as much) */
  refreshTokenTtl: number
  /** seconds: no refresh extends a session past this long after its login */
  sessionMaxAge: number
  /** an account's live sessions at most; a login beyond ends the oldest */
  maxSessionsPerUser: number
  /** seconds in which a just-spent refresh token gets the same successor again; 0: strict */
  refreshReuseGrace: number
  usersFile: string | undefined
  /** development (only) without USERS_FILE seeds demo users */
  seedDemoUsers: boolean
  corsOrigins: string[]
  /** OpenID Connect providers trusted for access tokens and sign-in (OIDC_PROVIDERS_FILE) */
  oidc: {
    providers: OidcProviderConfig[]
    /** origins a browser sign-in may return to besides the API's own (OIDC_RETURN_ORIGINS) */
    returnOrigins: string[]
    /** the API's origin as browsers reach it, for redirect URIs behind proxies (PUBLIC_ORIGIN) */
    publicOrigin: string | undefined
  }
  /** how long a client may take to send its request, and how many connections it may hold (ms, counts; 0 = unbounded) */
  http: {
    headersTimeoutMs: number
    requestTimeoutMs: number
    keepAliveTimeoutMs: number
    maxRequestsPerSocket: number
    maxConnections: number
  }
  rateLimit: { max: number, loginMax: number, refreshMax: number }
  trustProxy: string[]
  /** Swagger UI and the OpenAPI document under /docs (default: on except in production) */
  docsEnabled: boolean
  logLevel: string
}

export const MIN_SECRET_BYTES = 32
/** The longest refresh grace window production accepts, in seconds. */
export const MAX_PRODUCTION_GRACE = 300

/**
 * Reads and validates the environment. Throws ConfigError naming the offending variable;
 * production refuses every unsafe default.
 */
export function loadConfig (environment: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset" for optional variables, as in most deployment tools.
  const data = Object.fromEntries(Object.entries(environment).filter(([, v]) => v !== ''))
  let env: Env
  try {
    // env: false — read only what we were given; env-schema would otherwise merge process.env underneath.
    env = envSchema<Env>({ schema: EnvSchema, data, env: false })
  } catch (err) {
    throw new ConfigError(`invalid environment: ${(err as Error).message.replaceAll('env/', '')}`)
  }

  const isProduction = env.NODE_ENV === 'production'
  const redisCluster = parseRedisCluster(env)
  if (redisCluster !== undefined && env.REDIS_URL !== undefined) {
    throw new ConfigError('REDIS_URL and REDIS_CLUSTER_NODES are both set: give one Redis (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES), not both')
  }
  if (isProduction && env.REDIS_URL === undefined && redisCluster === undefined) {
    throw new ConfigError('REDIS_URL is required in production, or REDIS_CLUSTER_NODES for a Redis Cluster (the in-memory store serves one process only)')
  }
  const algorithm = env.JWT_ALGORITHM as SigningAlgorithm
  const privateKey = algorithm === 'HS256' ? undefined : loadPrivateKey(algorithm, env.JWT_PRIVATE_KEY_FILE)
  if (algorithm !== 'HS256' && env.JWT_SECRET !== undefined) {
    throw new ConfigError(`JWT_SECRET is for HS256; JWT_ALGORITHM=${algorithm} signs with JWT_PRIVATE_KEY_FILE (unset JWT_SECRET)`)
  }
  if (env.JWT_SECRET === undefined && isProduction && algorithm === 'HS256') {
    throw new ConfigError(`JWT_SECRET is required in production (at least ${MIN_SECRET_BYTES} bytes)`)
  }
  if (env.JWT_SECRET !== undefined && Buffer.byteLength(env.JWT_SECRET) < MIN_SECRET_BYTES) {
    throw new ConfigError(`JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  const previousSecrets = env.JWT_PREVIOUS_SECRETS.split(',').map(secret => secret.trim()).filter(secret => secret !== '')
  if (previousSecrets.some(secret => Buffer.byteLength(secret) < MIN_SECRET_BYTES)) {
    throw new ConfigError(`JWT_PREVIOUS_SECRETS: each secret must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  if (isProduction) {
    // 0 turns limits off for benchmarks; in production it would leave passwords open to guessing.
    for (const name of ['RATE_LIMIT_MAX', 'RATE_LIMIT_LOGIN_MAX', 'RATE_LIMIT_REFRESH_MAX'] as const) {
      if (env[name] === 0) throw new ConfigError(`${name}=0 turns rate limiting off, which production refuses (it is meant for benchmarks)`)
    }
  }
  if (isProduction && env.REFRESH_REUSE_GRACE > MAX_PRODUCTION_GRACE) {
    throw new ConfigError(`REFRESH_REUSE_GRACE=${env.REFRESH_REUSE_GRACE} is longer than production allows (${MAX_PRODUCTION_GRACE} s): a stolen refresh token is only detected once the window has passed`)
  }
  if (env.HTTP_HEADERS_TIMEOUT > env.HTTP_REQUEST_TIMEOUT) {
    throw new ConfigError('HTTP_HEADERS_TIMEOUT must not be longer than HTTP_REQUEST_TIMEOUT (the headers are part of the request)')
  }
  if (env.REFRESH_TOKEN_TTL <= env.ACCESS_TOKEN_TTL) {
    throw new ConfigError('REFRESH_TOKEN_TTL must be longer than ACCESS_TOKEN_TTL')
  }
  if (env.SESSION_MAX_AGE < env.REFRESH_TOKEN_TTL) {
    throw new ConfigError('SESSION_MAX_AGE must not be shorter than REFRESH_TOKEN_TTL (a session\'s absolute bound, its idle timeout)')
  }

  return {
    env: env.NODE_ENV,
    isProduction,
    port: env.PORT,
    host: env.HOST,
    redisUrl: env.REDIS_URL,
    redisCluster,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    jwt: {
      secret: env.JWT_SECRET === undefined ? randomBytes(MIN_SECRET_BYTES) : Buffer.from(env.JWT_SECRET),
      secretGenerated: env.JWT_SECRET === undefined,
      previousSecrets: previousSecrets.map(secret => Buffer.from(secret)),
      algorithm,
      privateKey,
      verifyKeys: loadVerifyKeys(env.JWT_VERIFY_KEYS_FILE),
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    },
    accessTokenTtl: env.ACCESS_TOKEN_TTL,
    refreshTokenTtl: env.REFRESH_TOKEN_TTL,
    sessionMaxAge: env.SESSION_MAX_AGE,
    maxSessionsPerUser: env.SESSIONS_PER_USER_MAX,
    refreshReuseGrace: env.REFRESH_REUSE_GRACE,
    usersFile: env.USERS_FILE,
    seedDemoUsers: env.NODE_ENV === 'development' && env.USERS_FILE === undefined,
    corsOrigins: parseOrigins(env.CORS_ORIGINS),
    oidc: {
      providers: loadOidcProviders(env.OIDC_PROVIDERS_FILE, environment, isProduction),
      returnOrigins: parseOrigins(env.OIDC_RETURN_ORIGINS, 'OIDC_RETURN_ORIGINS'),
      publicOrigin: env.PUBLIC_ORIGIN === undefined ? undefined : parseOrigin(env.PUBLIC_ORIGIN, 'PUBLIC_ORIGIN'),
    },
    http: {
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT * 1000,
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT * 1000,
      keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT * 1000,
      maxRequestsPerSocket: env.HTTP_MAX_REQUESTS_PER_SOCKET,
      maxConnections: env.HTTP_MAX_CONNECTIONS,
    },
    rateLimit: { max: env.RATE_LIMIT_MAX, loginMax: env.RATE_LIMIT_LOGIN_MAX, refreshMax: env.RATE_LIMIT_REFRESH_MAX },
    trustProxy: parseTrustProxy(env.TRUST_PROXY ?? ''),
    docsEnabled: env.DOCS_ENABLED ?? !isProduction,
    logLevel: env.LOG_LEVEL,
  }
}
