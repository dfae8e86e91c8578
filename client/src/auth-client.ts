import createClient, { type Client, type Middleware } from 'openapi-fetch'
import type { paths } from './api.js'
import { platformCoordination, type Coordination, type CoordinationMessage } from './coordination.js'
import { AuthError, SignedOutError } from './errors.js'
import { TokenRefresher } from './refresher.js'
import type { StoredTokens, TokenStorage, Transport } from './session.js'
import { Session } from './session.js'

export interface AuthClientOptions {
  /** the API's origin, e.g. https://api.example.com */
  baseUrl: string
  /** 'cookie' (browsers: HttpOnly cookies) or 'body' (mobile, REST: tokens in memory and `storage`); default 'cookie' */
  transport?: Transport
  /** body mode: where the tokens outlive the process (Keychain, Expo SecureStore); methods may be async */
  storage?: TokenStorage
  /** a fetch implementation (default: the global one) */
  fetch?: typeof globalThis.fetch
  /** how often a refresh that failed on the network, or was answered 429/5xx, is tried again (default 4) */
  refreshRetries?: number
  /** the first wait before such a retry, doubled each time (default 250 ms) */
  retryDelayMs?: number
  /** how long one refresh attempt may take before it is tried again (default 10 s) */
  refreshTimeoutMs?: number
  /** refresh a little before the access token runs out (default true) */
  proactiveRefresh?: boolean
  /** how tabs agree on who refreshes (default: Web Locks + BroadcastChannel where they exist) */
  coordination?: Coordination
}

export interface AuthClient {
  /** Starts a session; rejects with AuthError (code INVALID_CREDENTIALS, …) when the API refuses. */
  login (credentials: { username: string, password: string }): Promise<void>
  /** fetch with the session: adds the token, refreshes when needed and retries once. */
  fetch (path: string, init?: RequestInit): Promise<Response>
  /** openapi-fetch's typed client, with the same behaviour. */
  readonly api: Client<paths>
  /** Called once when the session ends (revoked, expired, logout); returns the unsubscribe function. */
  onSignedOut (listener: () => void): () => void
  /** Ends the session on the server and here. */
  logout (): Promise<void>
}

/** What a 401 says the client should do. */
async function codeOf (response: Response): Promise<string | undefined> {
  try {
    return ((await response.clone().json()) as { code?: unknown }).code as string | undefined
  } catch {
    return undefined
  }
}

/** Creates a client kit for one API; see README "Clients". */
export function createAuthClient (options: AuthClientOptions): AuthClient {
  const transport = options.transport ?? 'cookie'
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const rawFetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  const coordination = options.coordination ?? platformCoordination(`token-auth:${baseUrl}`)
  const session = new Session(transport, options.storage)
  const refresher = new TokenRefresher({
    baseUrl,
    transport,
    session,
    coordination,
    fetch: rawFetch,
    retries: options.refreshRetries ?? 4,
    retryDelayMs: options.retryDelayMs ?? 250,
    timeoutMs: options.refreshTimeoutMs ?? 10_000,
    proactive: options.proactiveRefresh ?? true,
  })
  const listeners = new Set<() => void>()
  /**
   * Whether this client has seen its session alive: a login, a refresh, tokens from storage or another
   * tab, or (cookie mode, where a tab may start from cookies it cannot read) an authenticated answer.
   * onSignedOut fires only when a session it had ends, never for a tab that was never signed in.
   */
  let signedIn = false

  async function signOut (tellOthers: boolean): Promise<void> {
    refresher.stop()
    const hadSession = signedIn || session.current !== null
    signedIn = false
    await session.clear()
    coordination.shareExpiry(0)
    if (!hadSession) return
    if (tellOthers) coordination.publish({ type: 'signed-out' })
    for (const listener of [...listeners]) {
      try {
        listener()
      } catch {
        // A listener's failure is its own: the others still hear, and the caller still gets SignedOutError.
      }
    }
  }
  refresher.onSessionEnded = () => signOut(true)
  // A session restored from storage is refreshed ahead of its expiry too.
  session.loaded.then(() => { if (session.current !== null) refresher.schedule() }, () => {})

  coordination.subscribe((message: CoordinationMessage) => {
    if (message.type === 'signed-out') {
      signOut(false).catch(() => {})
      return
    }
    signedIn = true
    session.adopt(message, { store: false }).then(() => refresher.schedule(), () => {})
  })

  const origin = new URL(baseUrl).origin
  /**
   * A path of this API (`/api/profile`) as a URL. Anything else is refused before a token goes
   * anywhere: a URL, `//host`, or a string that glued to the base would name another host (`.evil.com`).
   */
  function urlOf (path: string): string {
    const url = path.startsWith('/') && !path.startsWith('//') ? new URL(`${baseUrl}${path}`) : undefined
    if (url?.origin !== origin) throw new TypeError(`${path}: not a path of ${origin} (paths start with one /)`)
    return url.href
  }

  /** The request as this transport authenticates it: a Bearer header, or the cookies (never for another origin). */
  function authorize (request: Request): Request {
    if (new URL(request.url).origin !== origin) return request
    if (transport === 'cookie') return new Request(request, { credentials: 'include' })
    const authorized = new Request(request)
    const token = session.current?.accessToken
    if (token !== undefined) authorized.headers.set('authorization', `Bearer ${token}`)
    return authorized
  }

  /** Before a request: the session loaded, refreshed first when its access token is (nearly) out. */
  async function prepare (required: boolean): Promise<{ generation: number, epoch: number }> {
    await session.loaded
    if (required && transport === 'body' && session.current === null) throw new SignedOutError('Not signed in')
    if (session.current !== null && session.expiresSoon()) await refresher.refresh()
    return { generation: session.generation, epoch: session.epoch }
  }

  /**
   * After an answer: an expired access token (or, in cookie mode, a missing access cookie: the
   * browser drops it at expiry) is refreshed — unless a refresh already happened since the request
   * left — and the request retried once; a doubled cookie is retried once (that answer expired the
   * planted copies); any other 401 ends the session.
   */
  async function settle (retry: () => Promise<Response>, response: Response, sent: { generation: number, epoch: number }): Promise<Response> {
    if (response.ok && sent.epoch === session.epoch) signedIn = true
    if (response.status !== 401) return response
    const code = await codeOf(response)
    // Not about the access token (a login's INVALID_CREDENTIALS, say), or about a session that has
    // since ended or been replaced: the caller's to read.
    if (code !== 'ACCESS_TOKEN_EXPIRED' && code !== 'INVALID_ACCESS_TOKEN' && code !== 'DUPLICATE_TOKEN_COOKIE') return response
    if (sent.epoch !== session.epoch) {
      if (session.current === null) throw new SignedOutError()
      return response
    }
    if (code === 'DUPLICATE_TOKEN_COOKIE') return retry()
    const missingCookie = transport === 'cookie' && code === 'INVALID_ACCESS_TOKEN' && response.headers.get('www-authenticate') === 'Bearer'
    if (code === 'ACCESS_TOKEN_EXPIRED' || missingCookie) {
      if (session.generation === sent.generation) await refresher.refresh()
      let again = await retry()
      // Cookie mode: another tab's refresh was taken for ours, yet this tab's cookies still lack the
      // access token (evicted, cleared): a refresh of its own, then the last try.
      if (missingCookie && again.status === 401 && again.headers.get('www-authenticate') === 'Bearer') {
        await refresher.refresh({ force: true })
        again = await retry()
      }
      if (again.status !== 401 || (await codeOf(again)) === 'ACCESS_TOKEN_EXPIRED') return again
    }
    await signOut(true)
    throw new SignedOutError()
  }

  const retries = new WeakMap<Request, { original: Request, sent: { generation: number, epoch: number } }>()
  const middleware: Middleware = {
    async onRequest ({ request }) {
      const sent = await prepare(false)
      // Cloned before authorize() takes the body over: the retry needs it whole.
      const original = request.clone()
      const authorized = authorize(request)
      retries.set(authorized, { original, sent })
      return authorized
    },
    async onResponse ({ request, response }) {
      const entry = retries.get(request)
      if (entry === undefined) return response
      return settle(() => rawFetch(authorize(entry.original.clone())), response, entry.sent)
    },
  }
  const api = createClient<paths>({ baseUrl, fetch: rawFetch })
  api.use(middleware)

  return {
    api,
    async login ({ username, password }) {
      const response = await rawFetch(`${baseUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(transport === 'cookie' ? { 'x-auth-mode': 'cookie' } : {}) },
        body: JSON.stringify({ username, password }),
        ...(transport === 'cookie' ? { credentials: 'include' as const } : {}),
      })
      const body = await response.json().catch(() => ({})) as { access_token?: string, refresh_token?: string, expires_in?: number, code?: string, message?: string }
      if (!response.ok) throw new AuthError(body.message ?? `login failed (${response.status})`, response.status, body.code)
      const tokens: StoredTokens = Session.fromAnswer(body, Date.now())
      refresher.stop()
      session.startNew()
      signedIn = true
      await session.adopt(tokens, { store: true })
      coordination.shareExpiry(tokens.accessExpiresAt)
      coordination.publish({ type: 'signed-in', ...session.shareable() })
      refresher.schedule()
    },
    async fetch (path, init = {}) {
      const original = new Request(urlOf(path), init)
      const sent = await prepare(true)
      const response = await rawFetch(authorize(original.clone()))
      return settle(() => rawFetch(authorize(original.clone())), response, sent)
    },
    onSignedOut (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    async logout () {
      await session.loaded
      const current = session.current
      try {
        await rawFetch(`${baseUrl}/auth/logout`, transport === 'cookie'
          ? { method: 'POST', credentials: 'include' }
          : {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...(current === null ? {} : { authorization: `Bearer ${current.accessToken}` }) },
              body: JSON.stringify(current?.refreshToken === undefined ? {} : { refresh_token: current.refreshToken }),
            })
      } finally {
        await signOut(true)
      }
    },
  }
}
