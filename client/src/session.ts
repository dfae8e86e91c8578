export type Transport = 'cookie' | 'body'

/** What the kit keeps of a session. */
export interface StoredTokens {
  /** body mode: sent as the Bearer token; cookie mode: kept in memory only, the cookie is what is sent */
  accessToken: string
  /** body mode only: cookie mode never holds the refresh token in JavaScript */
  refreshToken?: string
  /** when the access token runs out, epoch ms (a second early: `expires_in` may overstate it) */
  accessExpiresAt: number
}

/** Where body mode keeps the tokens between runs; each method may return a promise. */
export interface TokenStorage {
  get (): StoredTokens | null | undefined | Promise<StoredTokens | null | undefined>
  set (tokens: StoredTokens): void | Promise<void>
  clear (): void | Promise<void>
}

/** How long before the expiry a refresh is due: 20 % of the lifetime, at most 30 s. */
export function refreshMargin (lifetimeMs: number): number {
  return Math.min(30_000, lifetimeMs * 0.2)
}

/** The session as this tab knows it, and its storage (body mode). */
export class Session {
  readonly #transport: Transport
  readonly #storage: TokenStorage | undefined
  #current: StoredTokens | null = null
  #lifetimeMs = 0
  readonly #waiters = new Set<() => void>()
  /** bumped at every change of tokens: a request remembers the one it was sent with */
  generation = 0
  /** bumped when a session ends or a new one starts: work begun for an older one is dropped */
  epoch = 0
  readonly loaded: Promise<void>

  constructor (transport: Transport, storage: TokenStorage | undefined) {
    this.#transport = transport
    this.#storage = transport === 'body' ? storage : undefined
    this.loaded = this.#load()
  }

  /** A login's or refresh's answer as stored tokens. */
  static fromAnswer (body: { access_token?: string, refresh_token?: string, expires_in?: number }, receivedAt: number): StoredTokens {
    const lifetimeMs = Math.max(0, ((body.expires_in ?? 0) - 1) * 1000)
    return {
      accessToken: body.access_token ?? '',
      ...(body.refresh_token === undefined ? {} : { refreshToken: body.refresh_token }),
      accessExpiresAt: receivedAt + lifetimeMs,
    }
  }

  get current (): StoredTokens | null {
    return this.#current
  }

  /** True when the access token is out, or within its refresh margin. */
  expiresSoon (now = Date.now()): boolean {
    return this.#current !== null && now >= this.#current.accessExpiresAt - refreshMargin(this.#lifetimeMs)
  }

  /** Whether an access token good until `accessExpiresAt` would already be due for a refresh. */
  wouldExpireSoon (accessExpiresAt: number, now = Date.now()): boolean {
    return now >= accessExpiresAt - refreshMargin(this.#lifetimeMs || accessExpiresAt - now)
  }

  /** When a proactive refresh is due, epoch ms (null: nothing to refresh). */
  refreshDueAt (): number | null {
    return this.#current === null ? null : this.#current.accessExpiresAt - refreshMargin(this.#lifetimeMs)
  }

  /** Takes tokens from an answer or another tab (body mode stores them unless told otherwise). */
  async adopt (tokens: { accessToken?: string, refreshToken?: string, accessExpiresAt: number }, options: { store: boolean }): Promise<void> {
    const previous = this.#current
    const next: StoredTokens = {
      accessToken: tokens.accessToken ?? previous?.accessToken ?? '',
      accessExpiresAt: tokens.accessExpiresAt,
    }
    const refreshToken = this.#transport === 'body' ? tokens.refreshToken ?? previous?.refreshToken : undefined
    if (refreshToken !== undefined) next.refreshToken = refreshToken
    this.#lifetimeMs = Math.max(0, next.accessExpiresAt - Date.now())
    this.#current = next
    this.#changed()
    if (options.store) await this.#storage?.set(next)
  }

  /** What another tab needs to know of this session (body mode: the tokens too). */
  shareable (): { accessExpiresAt: number, accessToken?: string, refreshToken?: string } {
    const current = this.#current
    if (current === null) return { accessExpiresAt: 0 }
    if (this.#transport === 'cookie') return { accessExpiresAt: current.accessExpiresAt }
    return { ...current }
  }

  /** Resolves true as soon as the tokens change from `generation` (now or within `timeoutMs`), false otherwise. */
  changedSince (generation: number, timeoutMs: number): Promise<boolean> {
    if (this.generation !== generation) return Promise.resolve(true)
    return new Promise(resolve => {
      const waiter = () => { clearTimeout(timer); resolve(true) }
      const timer = setTimeout(() => { this.#waiters.delete(waiter); resolve(false) }, timeoutMs)
      this.#waiters.add(waiter)
    })
  }

  /** Bumps the generation and wakes whoever waits for a change. */
  #changed (): void {
    this.generation++
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const waiter of waiters) waiter()
  }

  async clear (): Promise<void> {
    this.#current = null
    this.#changed()
    this.epoch++
    await this.#storage?.clear()
  }

  /** A new session (a login): whatever was under way for the previous one no longer counts. */
  startNew (): void {
    this.epoch++
  }

  async #load (): Promise<void> {
    let stored: StoredTokens | null | undefined
    try {
      stored = await this.#storage?.get()
    } catch {
      stored = null // unreadable storage: signed out, not stuck
    }
    if (stored !== null && stored !== undefined && this.#current === null) {
      this.#current = stored
      this.#lifetimeMs = Math.max(0, stored.accessExpiresAt - Date.now())
      this.#changed()
    }
  }
}
