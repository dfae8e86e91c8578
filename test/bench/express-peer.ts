/**
 * The peer the hot path is measured against: Express + passport-jwt + ioredis at its best — a KeyObject
 * secret, ioredis auto-pipelining, the per-IP count and the denylist and account reads issued together
 * — doing the same checks as GET /api/profile: a per-IP limit counted in Redis, signature and claims,
 * the `sid`/`jti` denylist, the account read.
 */
import { createSecretKey } from 'node:crypto'
import express from 'express'
import { Redis } from 'ioredis'
import passport from 'passport'
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt'
import { keysFor } from '../../src/store/keys.js'

const COUNT = "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return c"

export interface PeerOptions { redisUrl: string, keyPrefix: string, secret: string, issuer: string, audience: string, max: number }

interface Claims { sub: string, sid: string, jti: string }

export function expressPeer (options: PeerOptions) {
  const redis = new Redis(options.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 0 }) as Redis & { countIp (key: string, windowMs: number): Promise<number> }
  redis.defineCommand('countIp', { numberOfKeys: 1, lua: COUNT })

  passport.use(new JwtStrategy({
    jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
    secretOrKey: createSecretKey(Buffer.from(options.secret)) as unknown as string,
    algorithms: ['HS256'],
    issuer: options.issuer,
    audience: options.audience,
  }, (claims: Claims, done: (err: unknown, user?: unknown) => void) => {
    const keys = keysFor(options.keyPrefix, claims.sub)
    Promise.all([redis.exists(keys.deniedSession(claims.sid), keys.deniedToken(claims.jti)), redis.hgetall(keys.account)]).then(([denied, account]) => {
      if (denied > 0 || account.id === undefined) done(null, false)
      else done(null, { id: account.id, username: account.username, email: account.email === '' ? null : account.email, roles: JSON.parse(account.roles ?? '[]') as string[] })
    }, done)
  }))

  const app = express()
  app.disable('x-powered-by')
  // The count and passport's reads are issued in the same tick (one auto-pipelined write); the count
  // still decides first, as the API's limiter does. A failed count lets the request through.
  app.use((req, res, next) => {
    const counted = redis.countIp(`${options.keyPrefix}peer-rate:${req.ip ?? ''}`, 60_000).catch(() => 0)
    const authenticate = passport.authenticate('jwt', { session: false }, (err: unknown, user: Express.User | false) => {
      counted.then(count => {
        if (count > options.max) res.status(429).json({ statusCode: 429, error: 'Too Many Requests', message: 'Too many requests' })
        else if (err !== null && err !== undefined) next(err)
        else if (user === false) res.status(401).json({ statusCode: 401, error: 'Unauthorized', message: 'Unauthorized' })
        else {
          req.user = user
          next()
        }
      }, next)
    }) as express.RequestHandler
    authenticate(req, res, next)
  })
  app.get('/api/profile', (req, res) => { res.json(req.user) })
  return { app, close: () => redis.quit() }
}
