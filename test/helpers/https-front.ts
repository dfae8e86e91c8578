import { execFileSync } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A self-signed certificate for `*.<domain>`, made by openssl, and its SPKI pin for Chromium. */
export function selfSignedCertificate (domain: string): { key: Buffer, cert: Buffer, spkiPin: string } {
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-tls-'))
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain},DNS:*.${domain}`,
    ], { stdio: 'ignore' })
    const key = readFileSync(join(dir, 'key.pem'))
    const cert = readFileSync(join(dir, 'cert.pem'))
    const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' })
    return { key, cert, spkiPin: createHash('sha256').update(spki).digest('base64') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export type Page = (request: IncomingMessage, response: ServerResponse) => boolean

/**
 * An HTTPS front on 127.0.0.1, as a TLS-terminating load balancer: requests for `apiHost` go to the
 * API over HTTP with X-Forwarded-For/-Proto/-Host, except what `pages` answers itself (static pages
 * of this or another host of the site).
 */
export async function httpsFront (options: { key: Buffer, cert: Buffer, apiHost: string, apiPort: number, pages: Page }): Promise<{ port: number, server: Server }> {
  const server = createServer({ key: options.key, cert: options.cert }, (request, response) => {
    if (options.pages(request, response)) return
    const host = (request.headers.host ?? '').split(':')[0]
    if (host !== options.apiHost) {
      response.writeHead(404).end()
      return
    }
    const upstream = httpRequest({
      host: '127.0.0.1',
      port: options.apiPort,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, 'x-forwarded-for': request.socket.remoteAddress, 'x-forwarded-proto': 'https', 'x-forwarded-host': request.headers.host },
    }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(response)
    })
    upstream.on('error', () => response.destroy())
    request.pipe(upstream)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, server }
}
