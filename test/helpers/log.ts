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
  return { stream, lines, records }
}
