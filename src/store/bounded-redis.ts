import type { Cluster, Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors.js'
import { COUNT_TIMEOUT_MS } from './redis-rate-counter.js'

/** A stalled Redis must turn into a 503 well within a second, never a hanging request. */
export const COMMAND_TIMEOUT_MS = COUNT_TIMEOUT_MS.asLongAsTheStore

/**
 * An ioredis connection behind timeouts of our own. Each call waits at most COMMAND_TIMEOUT_MS, or
 * until its request's deadline if that is sooner (with nothing left, it is not sent). A timeout is
 * judged only after the event loop has read what the socket holds (setImmediate runs after the poll
 * phase): a loop that was busy must not turn an answer already there into a 503.
 *
 * A connection silent for a whole COMMAND_TIMEOUT_MS is dropped (its socket destroyed, so ioredis
 * reconnects at once rather than after a graceful close a vanished host never answers) and
 * reported, once per connection. Not while a rotation may still run on it: a rotation's caller must
 * not hear 503 before the rotation's own cut-off, or Redis could spend a token after the caller was
 * told nothing happened; the drop waits until every such cut-off has passed.
 */
export class BoundedRedis<R extends Redis | Cluster = Redis> {
  readonly client: R
  readonly #onDropped: (reason: string) => void
  readonly #silentStreams: () => Stream[]
  /** local times until which rotations in flight may still run in Redis */
  readonly #guards = new Set<{ until: number }>()
  readonly #droppedStreams = new WeakSet<Stream>()
  #dropTimer: NodeJS.Timeout | undefined
  #closing = false

  /**
   * `silentStreams` names the sockets a silence is blamed on: by default the client's own one; on a
   * cluster, those of the masters with commands unanswered.
   */
  constructor (client: R, onDropped: (reason: string) => void, silentStreams: () => Stream[] = () => ownStream(client as Redis)) {
    this.client = client
    this.#onDropped = onDropped
    this.#silentStreams = silentStreams
  }

  /** Runs one ioredis call, bounded; a whole timeout of silence drops the connection. */
  run<T> (command: () => Promise<T>, deadline?: number): Promise<T> {
    return this.wait(command, deadline, () => { this.#dropSilent() })
  }

  /**
   * Runs `command` (a rotation) with the connection kept until `until` (local time) even if another
   * call finds it silent meanwhile.
   */
  guarded<T> (until: number, command: () => Promise<T>, deadline?: number): Promise<T> {
    const guard = { until }
    this.#guards.add(guard)
    return this.run(command, deadline).finally(() => { this.#guards.delete(guard) })
  }

  /** Waits for `promise`, bounded as run() is, but never drops anything (a wait on something else). */
  wait<T> (command: () => Promise<T>, deadline?: number, onSilence?: () => void): Promise<T> {
    const timeoutMs = deadline === undefined ? COMMAND_TIMEOUT_MS : Math.min(COMMAND_TIMEOUT_MS, deadline - Date.now())
    if (timeoutMs <= 0) return Promise.reject(new StoreUnavailableError(new Error('the request\'s wait on the store is spent')))
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (settled) return
          settled = true
          reject(new StoreUnavailableError(new Error(`Redis did not answer within ${timeoutMs} ms`)))
          // Past a request's deadline only, Redis may merely be slow: nothing is dropped for that.
          if (timeoutMs === COMMAND_TIMEOUT_MS) onSilence?.()
        })
      }, timeoutMs)
      command().then((value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(value)
      }, (err: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err))
      })
    })
  }

  /** No more drops or reconnects: the store is closing. */
  close (): void {
    this.#closing = true
    clearTimeout(this.#dropTimer)
  }

  #dropSilent (): void {
    if (this.#closing) return
    const streams = this.#silentStreams().filter(stream => !this.#droppedStreams.has(stream))
    if (streams.length === 0) return
    for (const stream of streams) this.#droppedStreams.add(stream)
    this.#onDropped(`no answer within ${COMMAND_TIMEOUT_MS} ms`)
    const drop = () => {
      this.#dropTimer = undefined
      const until = Math.max(0, ...[...this.#guards].map(guard => guard.until))
      if (until > Date.now()) {
        this.#dropTimer = setTimeout(drop, until - Date.now())
        return
      }
      if (this.#closing) return
      // Still the connection that fell silent (not one opened since): destroyed, so a new one is opened.
      const current = new Set(this.#silentStreams())
      for (const stream of streams) if (current.has(stream)) stream.destroy()
    }
    drop()
  }
}

/** A socket of an ioredis connection. */
export interface Stream { destroy (): void }

/** The socket of a connected ioredis client, if it has one. */
export function ownStream (client: Redis): Stream[] {
  const stream = (client as unknown as { stream?: Stream }).stream
  return client.status === 'ready' && stream !== undefined ? [stream] : []
}
