import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { isIP, connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { encodeCommand, RedisReplyError, ReplyParser, type Reply } from './resp.js'

export type ReplyCallback = (err: Error | null, reply: Reply) => void

export interface RedisPipelineOptions {
  url: string
  /** a command fails this long after its batch was written to the socket, unanswered */
  commandTimeoutMs: number
  connectTimeoutMs?: number
  /** commands sent and not yet answered, at most; more fail at once (a stalled Redis must not grow us) */
  maxInFlight?: number
}

/** A Lua script sent by its SHA-1 (EVALSHA), loaded on every (re)connect. */
export interface PipelineScript { lua: string, sha: string, numberOfKeys: number }

export function pipelineScript (lua: string, numberOfKeys: number): PipelineScript {
  return { lua, numberOfKeys, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * The hot path's connection to Redis as the store sees it: one RedisPipeline for one Redis, a
 * ClusterPipeline (one RedisPipeline per master, commands routed by slot) for a cluster.
 * Emits 'dropped' (reason) when it drops a silent connection; a ClusterPipeline also emits
 * 'node-ready' and 'reconnected' (see there).
 */
export interface BatchedRedis extends EventEmitter {
  /** Registers a script to load on every connection, before connect(). */
  defineScript (lua: string, numberOfKeys: number): PipelineScript
  /** EVALSHA of a defined script, sent where its first key lives. */
  evalScript (script: PipelineScript, keysAndArgs: ReadonlyArray<string | number>, callback: ReplyCallback, timeoutMs?: number): void
  /** Every connection answers a PING. */
  ping (): Promise<void>
  connect (): Promise<void>
  close (): Promise<void>
  readonly stats: { writes: number, commands: number }
}

/** Commands of one turn with one timeout: sequence numbers [first, last), and when they fail unanswered. */
interface Batch {
  first: number
  last: number
  timeoutMs: number
  writtenAt: number
  deadline: number
}

/** This turn's commands with one timeout, not written yet. */
interface Pending {
  timeoutMs: number
  encoded: string
  callbacks: ReplyCallback[]
}

const noop: ReplyCallback = () => {}

/**
 * Calls back; a callback that throws is a bug of its caller and surfaces as one (an uncaught
 * exception), never as this connection's failure or as other callbacks left uncalled.
 */
function invoke (callback: ReplyCallback, err: Error | null, reply: Reply): void {
  try {
    callback(err, reply)
  } catch (thrown) {
    process.nextTick(() => { throw thrown })
  }
}
/** Commands that need the connection to themselves (a transaction, a subscription, a blocking wait). */
const REFUSED_NAMES = ['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR', 'BLPOP', 'BRPOP', 'BLMOVE', 'BZPOPMIN', 'BZPOPMAX', 'XREAD', 'WAIT']
/** Upper and lower case, looked up as given: no case conversion per command on the hot path. */
const REFUSED = new Set([...REFUSED_NAMES, ...REFUSED_NAMES.map(name => name.toLowerCase())])
export const unavailable = (reason: string) => new Error(`Redis unavailable: ${reason}`)

/**
 * The hot path's Redis connection: every command issued in one event-loop turn leaves in one write
 * (flushed by setImmediate), replies come back in order to plain callbacks — no promise, object or
 * timer per command. Timeouts are per batch: its commands fail `commandTimeoutMs` after the batch was
 * written, checked by one timer for the oldest batch, and only after the event loop has read what
 * the socket holds (a loop that was starved must not turn a healthy Redis's answer into a 503).
 * Not connected, or too many commands in flight: commands fail at once. No command is ever resent.
 * Only single commands and scripts travel here: a MULTI needs a connection of its own (ioredis's).
 * A connection that leaves a command unanswered for the full command timeout, or that sends what is
 * not RESP, is dropped and opened again: a Redis gone silent without closing the socket (a host that
 * vanished, a black-holing network) would otherwise hold it until the kernel gives up, many minutes
 * of 503s after Redis is reachable again.
 * Emits 'ready' after each (re)connect and 'dropped' (with the reason) when it drops a connection.
 */
export class RedisPipeline extends EventEmitter implements BatchedRedis {
  readonly #url: URL
  readonly #timeoutMs: number
  readonly #connectTimeoutMs: number
  readonly #maxInFlight: number
  readonly #scripts: PipelineScript[] = []
  readonly #parser: ReplyParser
  #socket: Socket | undefined
  #ready = false
  #closing = false
  #attempt = 0
  #reconnectTimer: NodeJS.Timeout | undefined
  /** this turn's commands by timeout (one or two groups: the default and a shorter one) */
  #pending: Pending[] = []
  #pendingCount = 0
  #flushScheduled = false
  /** callbacks of written commands, oldest first from #head */
  #inFlight: ReplyCallback[] = []
  #head = 0
  #written = 0
  #answered = 0
  #batches: Batch[] = []
  #timer: NodeJS.Timeout | undefined

  constructor (options: RedisPipelineOptions) {
    super()
    this.#url = new URL(options.url)
    this.#timeoutMs = options.commandTimeoutMs
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1000
    this.#maxInFlight = options.maxInFlight ?? 50_000
    this.#parser = new ReplyParser(reply => { this.#onReply(reply) })
  }

  get ready (): boolean {
    return this.#ready
  }

  /** Socket writes and commands written since the start: how well turns are batched. */
  get stats (): { writes: number, commands: number } {
    return { writes: this.#writes, commands: this.#written }
  }

  #writes = 0

  /** Registers a script to load on every connect; call before connect(). */
  defineScript (lua: string, numberOfKeys: number): PipelineScript {
    const script = pipelineScript(lua, numberOfKeys)
    this.#scripts.push(script)
    return script
  }

  /** Connects, authenticates, selects the database and loads the scripts; rejects if that fails. */
  async connect (): Promise<void> {
    this.#closing = false
    await this.#open()
  }

  /**
   * Sends one command in this turn's write; `callback` gets its reply (an error reply as `err`).
   * `timeoutMs` (at most the default) gives up on it sooner. Commands of one turn with different
   * timeouts may leave in another order than they were sent: never send dependent commands so.
   */
  send (args: ReadonlyArray<string | number>, callback: ReplyCallback, timeoutMs = this.#timeoutMs): void {
    if (REFUSED.has(args[0] as string)) {
      process.nextTick(callback, new Error(`${String(args[0])} cannot share a batched connection`), null)
      return
    }
    if (!this.#ready) {
      process.nextTick(callback, unavailable('not connected'), null)
      return
    }
    if (this.#written - this.#answered + this.#pendingCount >= this.#maxInFlight) {
      process.nextTick(callback, unavailable('too many commands waiting for an answer'), null)
      return
    }
    let group = this.#pending[0]
    if (group === undefined || group.timeoutMs !== timeoutMs) {
      group = this.#pending.find(p => p.timeoutMs === timeoutMs)
      if (group === undefined) this.#pending.push(group = { timeoutMs, encoded: '', callbacks: [] })
    }
    group.encoded += encodeCommand(args)
    group.callbacks.push(callback)
    this.#pendingCount++
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#flush)
    }
  }

  /** EVALSHA of a defined script (its keys first, then its arguments). */
  evalScript (script: PipelineScript, keysAndArgs: ReadonlyArray<string | number>, callback: ReplyCallback, timeoutMs = this.#timeoutMs): void {
    const sentAt = performance.now()
    this.send(['EVALSHA', script.sha, script.numberOfKeys, ...keysAndArgs], (err, reply) => {
      // Scripts are loaded at connect; flushed since (SCRIPT FLUSH): sent once more in full, within
      // what is left of the command's timeout (its caller's wait must not double).
      if (err instanceof RedisReplyError && err.message.startsWith('NOSCRIPT')) {
        const left = Math.floor(timeoutMs - (performance.now() - sentAt))
        if (left <= 0) callback(new Error(`Redis did not answer within ${timeoutMs} ms`), null)
        else this.send(['EVAL', script.lua, script.numberOfKeys, ...keysAndArgs], callback, left)
        return
      }
      callback(err, reply)
    }, timeoutMs)
  }

  /** Promise form of send(), for the few callers outside the hot path. */
  call (args: ReadonlyArray<string | number>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.send(args, (err, reply) => { if (err === null) resolve(reply); else reject(err) })
    })
  }

  async ping (): Promise<void> {
    await this.call(['PING'])
  }

  /** QUIT once what was sent is answered (or a timeout's worth later); then the connection is closed for good. */
  async close (): Promise<void> {
    this.#closing = true
    clearTimeout(this.#reconnectTimer)
    const socket = this.#socket
    if (socket === undefined || !this.#ready) {
      socket?.destroy()
      return
    }
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
    const quit = this.call(['QUIT']).catch(() => {})
    const timeout = new Promise<void>(resolve => setTimeout(resolve, this.#timeoutMs).unref())
    await Promise.race([quit.then(() => closed), timeout])
    socket.destroy()
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    const groups = this.#pending
    if (groups.length === 0) return
    this.#pending = []
    this.#pendingCount = 0
    const socket = this.#socket
    if (socket === undefined || !this.#ready) {
      for (const group of groups) for (const callback of group.callbacks) invoke(callback, unavailable('connection lost'), null)
      return
    }
    // One write; each group's clock starts now.
    socket.write(groups.length === 1 ? (groups[0] as Pending).encoded : groups.map(group => group.encoded).join(''))
    this.#writes++
    const now = performance.now()
    for (const group of groups) {
      const first = this.#written
      for (const callback of group.callbacks) this.#inFlight.push(callback)
      this.#written += group.callbacks.length
      this.#batches.push({ first, last: this.#written, timeoutMs: group.timeoutMs, writtenAt: now, deadline: now + group.timeoutMs })
      this.#armTimer(now + group.timeoutMs, now)
    }
  }

  #timerAt = Infinity

  /** Keeps one timer, for the earliest deadline. */
  #armTimer (deadline: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= deadline) return
    clearTimeout(this.#timer)
    this.#timerAt = deadline
    this.#timer = setTimeout(this.#onTimer, Math.max(1, deadline - now))
  }

  #onReply (reply: Reply): void {
    const callback = this.#inFlight[this.#head] ?? noop
    this.#inFlight[this.#head] = noop
    this.#head++
    this.#answered++
    // Compacted now and then, not shifted per reply.
    if (this.#head === this.#inFlight.length) {
      this.#inFlight = []
      this.#head = 0
    } else if (this.#head > 1024) {
      this.#inFlight = this.#inFlight.slice(this.#head)
      this.#head = 0
    }
    while (this.#batches.length > 0 && (this.#batches[0] as Batch).last <= this.#answered) this.#batches.shift()
    if (reply instanceof RedisReplyError) invoke(callback, reply, null)
    else invoke(callback, null, reply)
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.#timerAt = Infinity
    // What the socket holds is read first (the poll phase runs before setImmediate's).
    setImmediate(this.#expire)
  }

  readonly #expire = (): void => {
    const now = performance.now()
    let next = Infinity
    let silent = false
    const kept: Batch[] = []
    for (const batch of this.#batches) {
      if (batch.last <= this.#answered) continue
      if (batch.deadline > now) {
        kept.push(batch)
        next = Math.min(next, batch.deadline)
        continue
      }
      // Its unanswered commands fail now; their replies, if they ever come, are read and dropped.
      const timedOut = new Error(`Redis did not answer within ${batch.timeoutMs} ms`)
      for (let seq = Math.max(batch.first, this.#answered); seq < batch.last; seq++) {
        const index = this.#head + (seq - this.#answered)
        const callback = this.#inFlight[index] ?? noop
        this.#inFlight[index] = noop
        invoke(callback, timedOut, null)
      }
      if (now - batch.writtenAt >= this.#timeoutMs) {
        silent = true
      } else {
        // A shorter timeout says less about Redis: the batch is watched until the full one.
        const deadline = batch.writtenAt + this.#timeoutMs
        kept.push({ ...batch, timeoutMs: this.#timeoutMs, deadline })
        next = Math.min(next, deadline)
      }
    }
    this.#batches = kept
    if (silent) this.#drop(`no answer within ${this.#timeoutMs} ms`)
    else if (next !== Infinity) this.#armTimer(next, now)
  }

  /**
   * Closes the connection on purpose; #onClose fails what is in flight and opens a new one. Reported
   * only for a connection that was up (not a reconnect's handshake going unanswered, not a close).
   */
  #drop (reason: string): void {
    const socket = this.#socket
    if (socket === undefined) return
    if (this.#ready && !this.#closing) this.emit('dropped', reason)
    this.#ready = false
    socket.destroy()
  }

  async #open (): Promise<void> {
    const url = this.#url
    const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1'
    const port = Number(url.port || 6379)
    const socket = url.protocol === 'rediss:'
      // SNI names a host, never an address (RFC 6066); the certificate is checked against either.
      ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}) })
      : netConnect({ host, port })
    socket.setNoDelay(true)
    this.#socket = socket
    this.#parser.reset()
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#parser.feed(chunk)
      } catch {
        // Not RESP2 (a proxy, a misconfigured server): nothing on this connection can be trusted.
        if (this.#socket === socket) this.#drop('a reply that is not RESP')
        else socket.destroy()
      }
    })
    socket.on('error', () => {}) // 'close' follows and does the work
    socket.once('close', () => { this.#onClose(socket) })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { socket.destroy(); reject(unavailable(`no connection within ${this.#connectTimeoutMs} ms`)) }, this.#connectTimeoutMs)
      socket.once(url.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => { clearTimeout(timer); resolve() })
      socket.once('close', () => { clearTimeout(timer); reject(unavailable('connection refused or closed')) })
    })
    // The handshake goes out as one batch too, before anyone else may send.
    this.#ready = true
    const handshake: Array<Promise<Reply>> = []
    const password = decodeURIComponent(url.password)
    const username = decodeURIComponent(url.username)
    if (password !== '') handshake.push(this.call(username === '' ? ['AUTH', password] : ['AUTH', username, password]))
    const db = Number(url.pathname.slice(1) || 0)
    if (db > 0) handshake.push(this.call(['SELECT', db]))
    for (const script of this.#scripts) handshake.push(this.call(['SCRIPT', 'LOAD', script.lua]))
    this.#ready = false
    this.#flushHandshake()
    try {
      await Promise.all(handshake)
    } catch (err) {
      socket.destroy()
      throw unavailable(`handshake failed (${(err as Error).message})`)
    }
    this.#ready = true
    this.#attempt = 0
    this.emit('ready')
  }

  /** Writes the handshake now (the connection is not ready for others until it is answered). */
  #flushHandshake (): void {
    this.#ready = true
    this.#flush()
    this.#ready = false
  }

  #onClose (socket: Socket): void {
    if (this.#socket !== socket) return
    this.#ready = false
    this.#socket = undefined
    this.#parser.reset()
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
    const lost = this.#inFlight.slice(this.#head)
    this.#inFlight = []
    this.#head = 0
    this.#answered = this.#written
    this.#batches = []
    for (const callback of lost) invoke(callback, unavailable('connection lost'), null)
    if (this.#closing) return
    // Reconnects with a growing wait, at most a second; commands fail at once meanwhile.
    this.#attempt++
    this.#reconnectTimer = setTimeout(() => {
      this.#open().catch(() => {}) // a failed attempt closes its socket, which schedules the next
    }, Math.min(this.#attempt * 100, 1000))
    this.#reconnectTimer.unref()
  }
}
