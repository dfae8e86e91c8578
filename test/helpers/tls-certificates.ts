import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface Certificates { dir: string, ca: string, cert: string, key: string }

/** A CA, and a certificate it signed for localhost (DNS and IP), made by openssl; removed after the test. */
export function certificates (t: Test): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-redis-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return makeCertificates(dir)
}

/**
 * The suite's own CA and localhost certificate (made by test/setup/before.ts), which every
 * test process trusts through NODE_EXTRA_CA_CERTS (package.json's tap test-env): the HTTPS servers
 * tests start (the OpenID providers) use it, as a private CA would be used in production.
 */
export const SUITE_CERTIFICATES_DIR = join(process.cwd(), '.tap', 'test-ca')

export function suiteCertificates (): Certificates {
  const file = (name: string) => join(SUITE_CERTIFICATES_DIR, name)
  return { dir: SUITE_CERTIFICATES_DIR, ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') }
}

/** Makes a CA and a localhost certificate (DNS and IP) in `dir`, with openssl. */
export function makeCertificates (dir: string): Certificates {
  const file = (name: string) => join(dir, name)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
  writeFileSync(file('san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', file('ca-key.pem'), '-out', file('ca.pem'), '-subj', '/CN=token-auth test CA')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', file('key.pem'), '-out', file('req.pem'), '-subj', '/CN=localhost')
  openssl('x509', '-req', '-in', file('req.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-CAcreateserial',
    '-days', '1', '-out', file('cert.pem'), '-extfile', file('san.cnf'))
  return { dir, ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') }
}
