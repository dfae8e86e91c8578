import { connect } from 'node:net'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

export interface TokenBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token?: string
}

export async function login (app: FastifyInstance, username: string, password: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { username, password }, headers })
}

/** Logs in and returns the token body; fails loudly if the login did not succeed. */
export async function loginTokens (app: FastifyInstance, user: { username: string, password: string }): Promise<Required<TokenBody>> {
  const response = await login(app, user.username, user.password)
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json()
}

export function refresh (app: FastifyInstance, refreshToken: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
}

/** Whether a TCP connect to the port is refused now (its listener closed). */
export function connectionRefused (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export function profile (app: FastifyInstance, headers: Record<string, string>): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url: '/api/profile', headers })
}

/** `name=value` of each Set-Cookie, and its attributes, keyed by cookie name. */
export function setCookies (response: LightMyRequestResponse): Map<string, { value: string, attributes: Record<string, string | true> }> {
  const cookies = new Map<string, { value: string, attributes: Record<string, string | true> }>()
  for (const cookie of response.cookies as Array<Record<string, unknown>>) {
    const { name, value, ...attributes } = cookie
    cookies.set(String(name), { value: String(value), attributes: attributes as Record<string, string | true> })
  }
  return cookies
}

/** The HTTP/1.1 answers in raw bytes read off a socket: status, lower-cased headers, body. */
export function parseAnswers (raw: string): Array<{ status: number, headers: Record<string, string>, body: string }> {
  const answers = []
  let rest = raw
  while (rest.startsWith('HTTP/1.1 ')) {
    const headEnd = rest.indexOf('\r\n\r\n')
    const [statusLine = '', ...headerLines] = rest.slice(0, headEnd).split('\r\n')
    const headers = Object.fromEntries(headerLines.map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
    const length = Number(headers['content-length'] ?? 0)
    answers.push({ status: Number(statusLine.split(' ')[1]), headers, body: rest.slice(headEnd + 4, headEnd + 4 + length) })
    rest = rest.slice(headEnd + 4 + length)
  }
  return answers
}

/**
 * Writes raw bytes to a listening server and reads what comes back until the server closes the
 * socket. Like a client that waits a moment and then gives up on an incomplete request, it ends its
 * side after 300 ms; an answer that takes longer than `hangMs` is a hang.
 */
export function rawExchange (port: number, bytes: string | Buffer, hangMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(hangMs, () => socket.destroy(new Error(`no answer within ${hangMs} ms`)))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
    socket.write(bytes)
    setTimeout(() => socket.end(), 300)
  })
}
