/**
 * Remembers, for a bounded number of keys, until when each was last reported, so that a flood of
 * events about one key (a client hammering a rate limit) is reported once per window, not once per
 * event. The oldest keys are forgotten first when the bound is reached; a forgotten key is simply
 * reported again.
 */
export class OncePerWindow {
  readonly #reportedUntil = new Map<string, number>()
  readonly #maxKeys: number
  readonly #now: () => number

  constructor (maxKeys: number, now: () => number = Date.now) {
    this.#maxKeys = maxKeys
    this.#now = now
  }

  /** true when `key` has not been reported in a window still open; it then counts as reported until `windowEndsAt`. */
  firstInWindow (key: string, windowEndsAt: number): boolean {
    const until = this.#reportedUntil.get(key)
    if (until !== undefined && until > this.#now()) return false
    // Delete and set again, so the Map's order stays oldest-reported first.
    this.#reportedUntil.delete(key)
    if (this.#reportedUntil.size >= this.#maxKeys) {
      const oldest = this.#reportedUntil.keys().next()
      if (oldest.done !== true) this.#reportedUntil.delete(oldest.value)
    }
    this.#reportedUntil.set(key, windowEndsAt)
    return true
  }

  get size (): number {
    return this.#reportedUntil.size
  }
}
