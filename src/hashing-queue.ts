import { availableParallelism } from 'node:os'
import { ApiError } from './errors.js'

/**
 * Password hashing is the one expensive thing a login does (argon2id: 19 MiB and tens of ms of one
 * core each). Without a bound, one client sending a few dozen logins at once (random usernames, so no
 * per-user limit sees them) fills libuv's pool and every other user's login waits behind them.
 */
export class LoginBusyError extends ApiError {
  override readonly retryAfter = 1
  constructor (scope: 'client' | 'server') {
    super(scope === 'client' ? 429 : 503, 'LOGIN_BUSY', scope === 'client'
      ? 'Too many logins from this client are being checked at once; retry in a second'
      : 'Too many logins are being checked at once; retry in a second')
  }
}

export interface HashingQueueOptions {
  /** hashes computed at once (default: the cores this process may use) */
  concurrency?: number
  /** hashes one client may have running or waiting at once; one more is a 429 */
  perClient?: number
  /** hashes waiting for a turn at most; one more is a 503 (default: 32 per unit of concurrency) */
  maxQueued?: number
  /** how long a hash may wait for its turn before it is given up with a 503 */
  maxWaitMs?: number
}

interface Waiting {
  client: string
  start: () => void
  timer: NodeJS.Timeout
}

/**
 * A concurrency cap, not a count: it bounds how much hashing runs and waits at any moment, overall
 * and per client, while a client that waits its turn may log in as often as the rate limits allow.
 * Turns are first come, first served, except that a client with nothing running goes first.
 */
export class HashingQueue {
  readonly #concurrency: number
  readonly #perClient: number
  readonly #maxQueued: number
  readonly #maxWaitMs: number
  #running = 0
  readonly #waiting: Waiting[] = []
  /** hashes running or waiting, per client */
  readonly #inFlight = new Map<string, number>()
  /** hashes running, per client */
  readonly #runningFor = new Map<string, number>()

  constructor (options: HashingQueueOptions = {}) {
    this.#concurrency = options.concurrency ?? availableParallelism()
    this.#perClient = options.perClient ?? 2
    this.#maxQueued = options.maxQueued ?? 32 * this.#concurrency
    this.#maxWaitMs = options.maxWaitMs ?? 2000
  }

  /**
   * Throws the LoginBusyError `run` would reject with if it were called now: lets a caller refuse
   * before doing the work that leads up to the hash (a store read).
   */
  refuseIfFull (client: string): void {
    if ((this.#inFlight.get(client) ?? 0) >= this.#perClient) throw new LoginBusyError('client')
    if (this.#running >= this.#concurrency && this.#waiting.length >= this.#maxQueued) throw new LoginBusyError('server')
  }

  /** Runs `hash` in `client`'s name when a turn is free; rejects with LoginBusyError when it cannot. */
  async run<T> (client: string, hash: () => Promise<T>): Promise<T> {
    this.refuseIfFull(client)
    this.#inFlight.set(client, (this.#inFlight.get(client) ?? 0) + 1)
    try {
      await this.#turn(client)
      this.#runningFor.set(client, (this.#runningFor.get(client) ?? 0) + 1)
      try {
        return await hash()
      } finally {
        this.#running--
        const running = (this.#runningFor.get(client) ?? 1) - 1
        if (running === 0) this.#runningFor.delete(client)
        else this.#runningFor.set(client, running)
        this.#next()
      }
    } finally {
      const left = (this.#inFlight.get(client) ?? 1) - 1
      if (left === 0) this.#inFlight.delete(client)
      else this.#inFlight.set(client, left)
    }
  }

  /** Hashes running and waiting now (for tests and metrics). */
  get load (): { running: number, waiting: number, clients: number } {
    return { running: this.#running, waiting: this.#waiting.length, clients: this.#inFlight.size }
  }

  #turn (client: string): Promise<void> {
    if (this.#running < this.#concurrency) {
      this.#running++
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const waiting: Waiting = {
        client,
        start: () => {
          clearTimeout(waiting.timer)
          this.#running++
          resolve()
        },
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiting), 1)
          reject(new LoginBusyError('server'))
        }, this.#maxWaitMs),
      }
      this.#waiting.push(waiting)
    })
  }

  /**
   * The next turn goes to the longest-waiting hash of a client that has none running, else to the
   * longest-waiting one: a client with hashes queued up does not make a newcomer wait behind all of them.
   */
  #next (): void {
    if (this.#waiting.length === 0) return
    let index = this.#waiting.findIndex(waiting => !this.#runningFor.has(waiting.client))
    if (index === -1) index = 0
    const [waiting] = this.#waiting.splice(index, 1)
    waiting?.start()
  }
}
