import fp from 'fastify-plugin'
import { dummyPasswordHash } from '../src/passwords.js'
import { DEMO_USERS, UserDirectory, readUsersFile, refuseDemoUsers, type UserEntry } from '../src/users.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UserDirectory
  }
}

/** Re-seeding after a reconnect is tried this often (0.25, 0.5, 1, then every 2 s: about 30 s). */
const RESEED_ATTEMPTS = 18

/**
 * The user directory, seeded at start-up from USERS_FILE (or, in development without one, with the
 * demo users). Seeding runs again whenever Redis comes back, in case it came back empty.
 */
export default fp(async function users (fastify) {
  const { config, store } = fastify
  const directory = new UserDirectory(store)
  fastify.decorate('users', directory)

  let entries: UserEntry[] = []
  if (config.usersFile !== undefined) {
    entries = await readUsersFile(config.usersFile)
  } else if (config.seedDemoUsers) {
    entries = DEMO_USERS
    fastify.log.warn({ demoUsers: DEMO_USERS.map(u => `${u.username} / ${'password' in u ? u.password : ''} (${u.roles.join(', ')})`) },
      'development: seeded demo users (username / password); set USERS_FILE to use your own')
  }
  if (config.isProduction) {
    await refuseDemoUsers(entries)
    const present = await directory.demoAccounts()
    if (present.length > 0) {
      throw new Error(`the token store holds the demo user${present.length > 1 ? 's' : ''} ${present.map(u => `'${u}'`).join(', ')} with the published password ` +
        '(a development instance used this Redis?): delete the account or change its password; production refuses demo users')
    }
  }
  const created = await directory.seed(entries)
  fastify.log.info({ created: created.length, total: entries.length }, 'users loaded')
  // Made now, not at the first unknown-user login, which would otherwise take twice as long.
  await dummyPasswordHash()

  // A node that has just come back may not serve yet (a cluster master rejoining answers CLUSTERDOWN
  // for a moment): a failed re-seed is tried again, a little later each time, for about half a minute.
  let retry: NodeJS.Timeout | undefined
  let closing = false
  const reseed = (attempt: number): void => {
    clearTimeout(retry)
    directory.reseed().then(
      (recreated) => { if (recreated.length > 0) fastify.log.warn({ recreated }, 'users recreated after the store came back empty') },
      (err: Error) => {
        if (closing) return
        if (attempt >= RESEED_ATTEMPTS) {
          fastify.log.error({ reason: err.message, attempts: attempt }, 'could not re-seed users after reconnecting; logins retry it')
          return
        }
        if (attempt === 1) fastify.log.warn({ reason: err.message }, 'could not re-seed users after reconnecting; trying again')
        retry = setTimeout(() => reseed(attempt + 1), Math.min(250 * 2 ** (attempt - 1), 2000))
        retry.unref()
      }
    )
  }
  store.onReconnect(() => reseed(1))
  fastify.addHook('onClose', async () => {
    closing = true
    clearTimeout(retry)
  })
}, { name: 'users', dependencies: ['config', 'store'] })
