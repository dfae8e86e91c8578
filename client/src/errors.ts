/** The session ended (revoked, expired, logged out): calls waiting on it reject with this. */
export class SignedOutError extends Error {
  override name = 'SignedOutError'
  constructor (message = 'Signed out: the session has ended') {
    super(message)
  }
}

/** The API answered something the kit cannot act on (after its retries), with the status and body code. */
export class AuthError extends Error {
  override name = 'AuthError'
  readonly status: number
  readonly code: string | undefined
  constructor (message: string, status: number, code?: string) {
    super(message)
    this.status = status
    this.code = code
  }
}
