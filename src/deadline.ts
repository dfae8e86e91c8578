/** How long a request's waits on the store may add up to, from its arrival: then it fails closed (503). */
export const STORE_BUDGET_MS = 1000

/**
 * When a request's store commands must all have answered, epoch ms (Date.now's clock). Each
 * command still waits at most the store's own per-command bound; the deadline caps the sum, so a
 * Redis that answers slowly, rather than not at all, cannot stretch a request of several round
 * trips past a second. Time spent queued for something else (the password-hashing queue, bounded
 * on its own) moves the deadline by as much: it is not a wait on the store.
 */
export class RequestDeadline {
  #at: number

  constructor (arrivedAt: number, budgetMs = STORE_BUDGET_MS) {
    this.#at = arrivedAt + budgetMs
  }

  /** The deadline of a request that arrived `elapsedMs` ago (Fastify: `reply.elapsedTime`). */
  static arrivedMsAgo (elapsedMs: number): RequestDeadline {
    return new RequestDeadline(Date.now() - elapsedMs)
  }

  get at (): number {
    return this.#at
  }

  /** Runs `work` without counting its time against the store budget. */
  async excluding<T> (work: () => Promise<T>): Promise<T> {
    const started = Date.now()
    try {
      return await work()
    } finally {
      this.#at += Date.now() - started
    }
  }
}
