import { Writable } from 'node:stream'

/** Collects every log line the app writes, raw and parsed. */
export function logCapture () {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      done()
    },
  })
  const records = () => lines.map(line => JSON.parse(line) as Record<string, unknown>)
  /** The URL of every request the app answered (or failed to), in the order of the answers. */
  const requestUrls = () => records().filter(line => line.msg === 'request completed' || line.msg === 'request errored').map(line => (line.req as { url?: string } | undefined)?.url ?? '')
  return { stream, lines, records, requestUrls }
}
