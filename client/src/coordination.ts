/**
 * How tabs of one origin agree on who refreshes: the browser's Web Locks API (`navigator.locks`) for
 * the refresh itself, `BroadcastChannel` to tell the others what came of it. Where neither exists
 * (Node, React Native) there is one "tab": the lock is a plain in-process queue and nothing is sent.
 */
export interface Coordination {
  /**
   * Runs `task` while holding the origin-wide refresh lock. `contended`: another tab held it when
   * this one asked (it was most likely refreshing, and its broadcast is on the way).
   */
  exclusive<T> (task: (contended: boolean) => Promise<T>): Promise<T>
  /** Tells the other tabs something. */
  publish (message: CoordinationMessage): void
  /** Listens to the other tabs; returns the unsubscribe function. */
  subscribe (listener: (message: CoordinationMessage) => void): () => void
  /**
   * The access expiry (epoch ms) the last refresh of any tab reached, read synchronously under the
   * lock (a broadcast may not have arrived yet when the next tab takes it); 0 when unknown.
   * Not a secret: a time, never a token.
   */
  sharedExpiry (): number
  shareExpiry (accessExpiresAt: number): void
}

export type CoordinationMessage =
  /** a tab refreshed: the access token now lasts until `accessExpiresAt`; body mode carries the tokens */
  | { type: 'refreshed', accessExpiresAt: number, accessToken?: string, refreshToken?: string }
  /** a tab signed in (body mode carries the tokens) */
  | { type: 'signed-in', accessExpiresAt: number, accessToken?: string, refreshToken?: string }
  /** the session ended in some tab */
  | { type: 'signed-out' }

interface StorageLike { getItem (key: string): string | null, setItem (key: string, value: string): void }
interface LockManagerLike {
  request<T> (name: string, callback: () => Promise<T>): Promise<T>
  request<T> (name: string, options: { ifAvailable: true }, callback: (lock: unknown) => Promise<T>): Promise<T>
}
interface BroadcastChannelLike {
  postMessage (message: unknown): void
  addEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  removeEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
}

/**
 * Web Locks and BroadcastChannel in a browser page, in-process stand-ins elsewhere. Only a page (a
 * `window` with a `document`) coordinates across tabs: Node has BroadcastChannel, and Web Locks too
 * from 24.5, and there every client of a process would otherwise share one session — wrong for a
 * server holding sessions of several users. Web Locks exist only in secure contexts (HTTPS, localhost).
 */
export function platformCoordination (name: string): Coordination {
  const page = globalThis as unknown as { window?: unknown, document?: unknown, navigator?: { locks?: LockManagerLike }, BroadcastChannel?: new (name: string) => BroadcastChannelLike }
  const inPage = page.window === globalThis && typeof page.document === 'object' && page.document !== null
  const locks = inPage ? page.navigator?.locks : undefined
  const Channel = page.BroadcastChannel
  const channel = locks === undefined || Channel === undefined ? undefined : new Channel(name)
  const storage = channel === undefined ? undefined : (globalThis as unknown as { localStorage?: StorageLike }).localStorage
  let queue: Promise<unknown> = Promise.resolve()
  let expiry = 0
  return {
    sharedExpiry () {
      return storage === undefined ? expiry : Number(storage.getItem(`${name}:accessExpiresAt`) ?? 0)
    },
    shareExpiry (accessExpiresAt) {
      expiry = accessExpiresAt
      storage?.setItem(`${name}:accessExpiresAt`, String(accessExpiresAt))
    },
    async exclusive (task) {
      if (locks !== undefined) {
        // Taken at once if free; otherwise waited for, and the task told so. (A broadcast may reach
        // this tab after the lock does: the two travel separately, as does localStorage.)
        let ran = false
        const result = await locks.request(`${name}:refresh`, { ifAvailable: true }, async (lock) => {
          if (lock === null) return undefined
          ran = true
          return await task(false)
        })
        if (ran) return result as Awaited<ReturnType<typeof task>>
        return await locks.request(`${name}:refresh`, () => task(true))
      }
      // One "tab": no other can broadcast, so nothing is worth waiting for.
      const run = queue.then(() => task(false), () => task(false))
      queue = run.catch(() => {})
      return await run
    },
    publish (message) {
      channel?.postMessage(message)
    },
    subscribe (listener) {
      if (channel === undefined) return () => {}
      const onMessage = (event: { data: unknown }) => { listener(event.data as CoordinationMessage) }
      channel.addEventListener('message', onMessage)
      return () => { channel.removeEventListener('message', onMessage) }
    },
  }
}
