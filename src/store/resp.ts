/**
 * RESP2, as much of it as the hot path needs: commands encoded into one string per batch, and an
 * incremental parser for the replies (a reply may arrive split over reads, several in one read).
 */

/** A Redis error reply (`-ERR …`, `-NOSCRIPT …`): the command failed, the connection is fine. */
export class RedisReplyError extends Error {
  override name = 'RedisReplyError'
}

export type Reply = string | number | null | RedisReplyError | Reply[]

/** One command as RESP: an array of bulk strings. Arguments are UTF-8; lengths are in bytes. */
export function encodeCommand (args: ReadonlyArray<string | number>): string {
  let encoded = `*${args.length}\r\n`
  for (const arg of args) {
    const text = typeof arg === 'string' ? arg : String(arg)
    encoded += `$${Buffer.byteLength(text)}\r\n${text}\r\n`
  }
  return encoded
}

const INCOMPLETE = Symbol('incomplete')
const CR = 13

/** Feeds bytes in, calls `onReply` once per complete reply, in order. */
export class ReplyParser {
  readonly #onReply: (reply: Reply) => void
  #buffer: Buffer | undefined
  #offset = 0

  constructor (onReply: (reply: Reply) => void) {
    this.#onReply = onReply
  }

  feed (chunk: Buffer): void {
    this.#buffer = this.#buffer === undefined ? chunk : Buffer.concat([this.#buffer, chunk])
    this.#offset = 0
    while (this.#offset < this.#buffer.length) {
      const start = this.#offset
      const reply = this.#value()
      if (reply === INCOMPLETE) {
        this.#buffer = this.#buffer.subarray(start)
        return
      }
      this.#onReply(reply)
    }
    this.#buffer = undefined
  }

  /** Forgets a partial reply (the connection it came on is gone). */
  reset (): void {
    this.#buffer = undefined
  }

  #line (): string | typeof INCOMPLETE {
    const buffer = this.#buffer as Buffer
    const end = buffer.indexOf(CR, this.#offset)
    if (end < 0 || end + 1 >= buffer.length) return INCOMPLETE
    const line = buffer.toString('utf8', this.#offset + 1, end)
    this.#offset = end + 2
    return line
  }

  #value (): Reply | typeof INCOMPLETE {
    const buffer = this.#buffer as Buffer
    const type = buffer[this.#offset]
    const line = this.#line()
    if (line === INCOMPLETE) return INCOMPLETE
    switch (type) {
      case 0x2b: return line // + simple string
      case 0x2d: return new RedisReplyError(line) // - error
      case 0x3a: return Number(line) // : integer
      case 0x24: { // $ bulk string
        const length = Number(line)
        if (length < 0) return null
        if (this.#offset + length + 2 > buffer.length) return INCOMPLETE
        const text = buffer.toString('utf8', this.#offset, this.#offset + length)
        this.#offset += length + 2
        return text
      }
      case 0x2a: { // * array
        const count = Number(line)
        if (count < 0) return null
        const items: Reply[] = []
        for (let i = 0; i < count; i++) {
          const item = this.#value()
          if (item === INCOMPLETE) return INCOMPLETE
          items.push(item)
        }
        return items
      }
      default:
        throw new Error(`not a RESP2 reply (type byte ${String(type)})`)
    }
  }
}
