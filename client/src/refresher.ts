import type { Coordination } from './coordination.js'
import { AuthError, SignedOutError } from './errors.js'
import { Session, type Transport } from './session.js'

export interface RefresherOptions {
  baseUrl: string
  transport: Transport
  session: Session
  coordination: Coordination
  fetch: typeof globalThis.fetch
  retries: number
  retryDelayMs: number
  /** how long one refresh attempt may take before it counts as lost on the network */
  timeoutMs: number
  proactive: boolean
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
/** How long a tab waits for another tab's broadcast tokens before it refreshes itself. */
const BROADCAST_WAIT_MS = 1000

/** AbortSignal.timeout where it exists (browsers, Node); a timer-driven controller elsewhere (older React Native). */
function timeoutSignal (ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms)
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new Error(`no answer within ${ms} ms`)) }, ms) as { unref?: () => void }
  timer.unref?.()
  return controller.signal
}

/**
 * Refreshes the session, once at a time: every caller that needs a refresh while one is under way
 * (in this tab, or in another tab holding the origin's lock) gets that one's result. Network
 * failures and 429/5xx answers are retried with the same refresh token after a growing wait: the
 * server answers a just-spent token again with the same successor, so a retry after a lost answer
 * is safe. A 401 means the session is over.
 */
export class TokenRefresher {
  readonly #options: RefresherOptions
  #inFlight: Promise<void> | undefined
  /** the session (Session.epoch) the refresh under way is for */
  #inFlightEpoch = -1
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Called when the server says the session is over (the client signs out). */
  onSessionEnded: () => Promise<void> = async () => {}

  constructor (options: RefresherOptions) {
    this.#options = options
  }

  /**
   * Refreshes now, or joins the refresh under way. `force`: refresh even if another tab seems to
   * have done it (the API has just said this tab's cookies do not show it).
   */
  refresh (options: { force?: boolean } = {}): Promise<void> {
    const { session, coordination } = this.#options
    if (this.#inFlight !== undefined && this.#inFlightEpoch === session.epoch) return this.#inFlight
    const before = session.generation
    this.#inFlightEpoch = session.epoch
    const inFlight: Promise<void> = coordination.exclusive(async (contended) => {
      // Another tab refreshed while this one waited for the lock: its result is ours already (body
      // mode: the tokens it broadcast; cookie mode: the cookies the tabs share, good until it says).
      if (options.force !== true && session.generation !== before && !session.expiresSoon()) return
      const shared = coordination.sharedExpiry()
      if (options.force !== true && this.#options.transport === 'cookie' && shared > (session.current?.accessExpiresAt ?? 0) && !session.wouldExpireSoon(shared)) {
        await session.adopt({ accessExpiresAt: shared }, { store: false })
        this.schedule()
        return
      }
      // Another tab held the lock, refreshing: its broadcast (posted before it let go, but not bound
      // to arrive first) carries the result. Waiting for it beats spending the token a second time.
      if (options.force !== true && contended && await session.changedSince(before, BROADCAST_WAIT_MS) && !session.expiresSoon()) return
      await this.#refreshNow()
    }).finally(() => { if (this.#inFlight === inFlight) this.#inFlight = undefined })
    this.#inFlight = inFlight
    return inFlight
  }

  /** (Re)arms the proactive refresh for the current access token. */
  schedule (): void {
    clearTimeout(this.#timer)
    const due = this.#options.session.refreshDueAt()
    if (!this.#options.proactive || due === null) return
    this.#timer = setTimeout(() => {
      this.refresh().catch(() => {
        // A failed background refresh is retried by the next call that needs the token.
      })
    }, Math.max(0, due - Date.now()))
    const timer = this.#timer as { unref?: () => void }
    timer.unref?.()
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#inFlight = undefined
  }

  async #refreshNow (): Promise<void> {
    const { baseUrl, transport, session, coordination, retries, retryDelayMs, timeoutMs } = this.#options
    const refreshToken = session.current?.refreshToken
    const epoch = session.epoch
    // The session ended (logout) or another began (login) while this refresh was under way: its
    // result belongs to nobody now, whatever it is.
    const stale = () => { if (session.epoch !== epoch) throw new SignedOutError('The session changed during the refresh') }
    for (let attempt = 0; ; attempt++) {
      let response: Response
      let body: { access_token?: string, refresh_token?: string, expires_in?: number, code?: string, message?: string }
      try {
        const signal = timeoutSignal(timeoutMs)
        response = await this.#options.fetch(`${baseUrl}/auth/refresh`, transport === 'cookie'
          ? { method: 'POST', credentials: 'include', signal }
          : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken ?? '' }), signal })
        body = await response.json().catch(() => ({})) as typeof body
      } catch (err) {
        stale()
        if (attempt >= retries) throw err
        await sleep(retryDelayMs * 2 ** attempt)
        continue
      }
      stale()
      if (response.ok) {
        await session.adopt(Session.fromAnswer(body, Date.now()), { store: true })
        coordination.shareExpiry(session.current?.accessExpiresAt ?? 0)
        coordination.publish({ type: 'refreshed', ...session.shareable() })
        this.schedule()
        return
      }
      // A doubled refresh cookie (another site of the domain planted one): nothing was spent, and
      // the answer expired the planted copies, so the next attempt carries the real cookie alone.
      if (response.status === 401 && body.code === 'DUPLICATE_TOKEN_COOKIE' && attempt < retries) continue
      if (response.status === 401) {
        await this.onSessionEnded()
        throw new SignedOutError()
      }
      if ((response.status === 429 || response.status >= 500) && attempt < retries) {
        const retryAfter = Number(response.headers.get('retry-after'))
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 30_000) : retryDelayMs * 2 ** attempt)
        continue
      }
      throw new AuthError(body.message ?? `refresh failed (${response.status})`, response.status, body.code)
    }
  }
}
