import t from 'tap'
import { OwnSessionRequiredError, ownPrincipal, ownSession } from '../src/principal.js'

// The principal routes read instead of a token's claims (ours and external providers' alike).

const claims = { iss: 'token-auth-api', aud: 'token-auth-api', sub: 'user-1', roles: ['user', 'admin'], sid: 'session-1', jti: 'token-1', iat: 1_000, exp: 1_900, epoch: 'e' }

t.test('our own token: issuer, id and subject from its claims, its session, frozen', async (t) => {
  const principal = ownPrincipal(claims)
  t.same(principal, { issuer: 'token-auth-api', id: 'user-1', subject: 'user-1', roles: ['user', 'admin'], session: { id: 'session-1', tokenId: 'token-1', expiresAt: 1_900 } })
  t.ok(Object.isFrozen(principal) && Object.isFrozen(principal.session), 'frozen: shared by every request that presents the token')
  t.equal(ownSession(principal).id, 'session-1')
})

t.test('a principal without a session of ours (an external token) is refused by routes about our sessions: 403, not 401', async (t) => {
  const external = { issuer: 'https://idp.example.com/', id: 'x', subject: 'abc', roles: ['user'], session: undefined }
  t.throws(() => ownSession(external), OwnSessionRequiredError)
  const error = new OwnSessionRequiredError()
  t.equal(error.statusCode, 403, 'not 401: a client must not take it for a dead session')
  t.equal(error.code, 'OWN_SESSION_REQUIRED')
})
