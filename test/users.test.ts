import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError } from '../src/config.js'
import { userIdFor } from '../src/ids.js'
import { hashPassword } from '../src/passwords.js'
import { keysFor } from '../src/store/keys.js'
import { MemoryStore, type AuthStore } from '../src/store/index.js'
import { UserDirectory, readUsersFile, type UserEntry } from '../src/users.js'
import { keysUnder, stopTestRedis, testRedisStore, withRedis } from './helpers/redis.js'

/** The OWASP profile every stored password must be hashed with (src/passwords.ts). */
const STORED_HASH = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/

const directory = mkdtempSync(join(tmpdir(), 'token-auth-users-test-'))
let files = 0
/** Writes `content` (a string as is, anything else as JSON) to a fresh file and returns its path. */
function usersFile (content: unknown): string {
  const path = join(directory, `users-${++files}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

/** The rejection of `promise`, or undefined when it resolved. */
async function rejectionOf (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  return undefined
}

t.teardown(() => stopTestRedis())

t.test('readUsersFile', async (t) => {
  t.test('accepts plaintext passwords and argon2id hashes, email optional', async (t) => {
    const passwordHash = await hashPassword('hashed-user-password')
    const entries = [
      { username: 'plain', password: 'plain-password', roles: ['user'], email: 'plain@example.com' },
      { username: 'hashed', passwordHash, roles: ['user', 'admin'] },
      { username: 'roleless', password: 'roleless-password', roles: [] },
    ]
    t.same(await readUsersFile(usersFile(entries)), entries, 'every entry comes back as written')
    t.same(await readUsersFile(usersFile([])), [], 'an empty list is a valid (empty) users file')
  })

  const argon2Hash = await hashPassword('some-password')
  const invalid: Array<[string, () => string]> = [
    ['an unreadable path', () => join(directory, 'does-not-exist.json')],
    ['a directory', () => directory],
    ['invalid JSON', () => usersFile('[{"username": "a", "password": "p", "roles": []')],
    ['an empty file', () => usersFile('')],
    ['a JSON object instead of an array', () => usersFile({ username: 'a', password: 'p', roles: [] })],
    ['a JSON string', () => usersFile('"alice"')],
    ['JSON null', () => usersFile('null')],
    ['an entry that is not an object', () => usersFile(['alice'])],
    ['missing roles', () => usersFile([{ username: 'a', password: 'p' }])],
    ['roles that are not a list', () => usersFile([{ username: 'a', password: 'p', roles: 'admin' }])],
    ['a role with spaces', () => usersFile([{ username: 'a', password: 'p', roles: ['super user'] }])],
    ['missing username', () => usersFile([{ password: 'p', roles: [] }])],
    ['an empty username', () => usersFile([{ username: '', password: 'p', roles: [] }])],
    ['a username longer than 128', () => usersFile([{ username: 'u'.repeat(129), password: 'p', roles: [] }])],
    ['neither password nor passwordHash', () => usersFile([{ username: 'a', roles: [] }])],
    ['an empty password', () => usersFile([{ username: 'a', password: '', roles: [] }])],
    ['both password and passwordHash', () => usersFile([{ username: 'a', password: 'p', passwordHash: argon2Hash, roles: [] }])],
    ['an unknown extra property', () => usersFile([{ username: 'a', password: 'p', roles: [], isAdmin: true }])],
    ['a bcrypt passwordHash', () => usersFile([{ username: 'a', passwordHash: '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', roles: [] }])],
    ['an argon2i passwordHash', () => usersFile([{ username: 'a', passwordHash: argon2Hash.replace('$argon2id$', '$argon2i$'), roles: [] }])],
    ['a passwordHash that is not PHC at all', () => usersFile([{ username: 'a', passwordHash: 'not-a-hash', roles: [] }])],
    ['an empty email', () => usersFile([{ username: 'a', password: 'p', roles: [], email: '' }])],
    ['an email without @', () => usersFile([{ username: 'a', password: 'p', roles: [], email: 'nobody' }])],
    ['a username that appears twice', () => usersFile([
      { username: 'twice', password: 'first-password', roles: [] },
      { username: 'twice', passwordHash: argon2Hash, roles: ['admin'] },
    ])],
  ]
  for (const [name, path] of invalid) {
    t.test(`refuses ${name}`, async (t) => {
      const err = await rejectionOf(readUsersFile(path()))
      t.ok(err instanceof ConfigError, 'a ConfigError')
      t.match((err as Error | undefined)?.message, /^USERS_FILE\b/, 'the message names USERS_FILE')
    })
  }

  t.test('a JSON syntax error never quotes the file (it may hold a password)', async (t) => {
    const err = await rejectionOf(readUsersFile(usersFile('[{"username":"a","roles":[],"password":hunter2}]')))
    t.match((err as Error | undefined)?.message, /is not valid JSON$/)
    t.notMatch((err as Error | undefined)?.message, /hunter2/)
  })

  t.test('a hash in another format is named as such', async (t) => {
    const err = await rejectionOf(readUsersFile(usersFile([{ username: 'a', passwordHash: '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', roles: [] }])))
    t.match((err as Error | undefined)?.message, /\/0\/passwordHash must be an argon2id PHC string/)
  })

  t.test('the message of a duplicate names the user, not its password', async (t) => {
    const err = await rejectionOf(readUsersFile(usersFile([
      { username: 'twice', password: 'first-password', roles: [] },
      { username: 'twice', password: 'second-password', roles: [] },
    ])))
    t.match((err as Error | undefined)?.message, /twice/)
    t.notMatch((err as Error | undefined)?.message, /first-password|second-password/)
  })
})

interface OpenStore {
  store: AuthStore
  /** every key the store holds, for Redis; undefined for the memory store */
  redis?: { url: string, prefix: string }
}

async function memoryStore (t: Test): Promise<OpenStore> {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  return { store }
}

async function redisStore (t: Test): Promise<OpenStore> {
  const { store, url, keyPrefix } = await testRedisStore(t)
  return { store, redis: { url, prefix: keyPrefix } }
}

for (const [kind, open] of [['memory', memoryStore], ['redis', redisStore]] as const) {
  t.test(`UserDirectory over the ${kind} store`, async (t) => {
    const passwordHash = await hashPassword('carol-original-password')
    const entries: UserEntry[] = [
      { username: 'alice', password: 'alice-password', roles: ['user'], email: 'alice@example.com' },
      { username: 'bob', password: 'bob-password', roles: ['user', 'admin'] },
      { username: 'carol', passwordHash, roles: ['user'] },
    ]

    t.test('seed creates every user; plaintext passwords are stored only as argon2id hashes', async (t) => {
      const { store } = await open(t)
      const users = new UserDirectory(store)
      t.same(await users.seed(entries), ['alice', 'bob', 'carol'], 'seed answers the names it created')

      for (const entry of entries) {
        const stored = await store.getUser(userIdFor(entry.username))
        t.ok(stored, `${entry.username} is in the store`)
        t.equal(stored?.username, entry.username)
        t.same(stored?.roles, entry.roles, `${entry.username}: roles as given`)
        t.equal(stored?.email, entry.email ?? null, `${entry.username}: email as given, null when absent`)
        if ('password' in entry) {
          t.match(stored?.passwordHash, STORED_HASH, `${entry.username}: argon2id with m=19456,t=2,p=1`)
          t.notMatch(JSON.stringify(stored), entry.password, `${entry.username}: the plaintext is stored nowhere`)
        } else {
          t.equal(stored?.passwordHash, entry.passwordHash, `${entry.username}: the given hash is stored as is`)
        }
      }
      const [alice, bob] = await Promise.all([store.getUser(userIdFor('alice')), store.getUser(userIdFor('bob'))])
      t.not(alice?.passwordHash, bob?.passwordHash, 'each hash has its own salt')
    })

    t.test('authenticate: right password → the user; anything else → null', async (t) => {
      const { store } = await open(t)
      const users = new UserDirectory(store)
      await users.seed(entries)

      const alice = await users.authenticate('alice', 'alice-password')
      t.equal(alice?.id, userIdFor('alice'), 'a plaintext-seeded user logs in')
      t.same(alice?.roles, ['user'])
      const carol = await users.authenticate('carol', 'carol-original-password')
      t.equal(carol?.username, 'carol', 'a user given as passwordHash logs in with the original password')

      t.equal(await users.authenticate('alice', 'wrong-password'), null, 'wrong password')
      t.equal(await users.authenticate('alice', 'alice-password '), null, 'password with a trailing space')
      t.equal(await users.authenticate('alice', ''), null, 'empty password')
      t.equal(await users.authenticate('carol', passwordHash), null, 'the hash itself is not a password')
      t.equal(await users.authenticate('mallory', 'alice-password'), null, 'unknown user')
      t.equal(await users.authenticate('Alice', 'alice-password'), null, 'usernames are case-sensitive')
      t.equal(await users.authenticate('bob', 'alice-password'), null, "another user's password")
    })

    t.test('seeding again never changes an existing password', async (t) => {
      const { store } = await open(t)
      const users = new UserDirectory(store)
      await users.seed(entries)
      const before = await store.getUser(userIdFor('alice'))

      const again = await users.seed([
        { username: 'alice', password: 'a-new-password', roles: ['user', 'admin'], email: 'new@example.com' },
        { username: 'carol', passwordHash: await hashPassword('carol-new-password'), roles: ['admin'] },
      ])
      t.same(again, [], 'no names created')
      t.same(await store.getUser(userIdFor('alice')), before, 'the account is untouched: hash, roles and email')
      t.equal((await users.authenticate('alice', 'alice-password'))?.username, 'alice', 'the old password still works')
      t.equal(await users.authenticate('alice', 'a-new-password'), null, 'the new one does not')
      t.equal((await users.authenticate('carol', 'carol-original-password'))?.username, 'carol', 'same for a hash entry')
      t.equal(await users.authenticate('carol', 'carol-new-password'), null)

      const mixed = await users.seed([...entries, { username: 'dave', password: 'dave-password', roles: [] }])
      t.same(mixed, ['dave'], 'only the new user is reported created')
    })

    t.test('a seeded account as the access check reads it (the profile): id, username, email, roles; never the password hash', async (t) => {
      const { store } = await open(t)
      const users = new UserDirectory(store)
      await users.seed(entries)
      const read = async (username: string) => (await store.checkAccess(userIdFor(username), 'sid', 'jti', { account: true })).account

      const alice = await read('alice')
      t.same(alice, { id: userIdFor('alice'), username: 'alice', email: 'alice@example.com', roles: ['user'] })
      const carol = await read('carol')
      t.same(carol, { id: userIdFor('carol'), username: 'carol', email: null, roles: ['user'] })
      for (const profile of [alice, carol]) {
        t.notOk(profile !== null && profile !== undefined && 'passwordHash' in profile, 'no passwordHash property')
        t.notMatch(JSON.stringify(profile), /argon2/, 'no hash anywhere in it')
      }
      t.equal(await read('nobody'), null, 'an unknown id has no account')
    })

    if (kind === 'redis') {
      t.test('redis: one permanent account key per user, and nothing else', async (t) => {
        const opened = await open(t)
        const { url, prefix } = opened.redis as { url: string, prefix: string }
        const users = new UserDirectory(opened.store)
        await users.seed(entries)
        // Failed logins read but must not write (no counters, no sessions).
        await users.authenticate('alice', 'wrong-password')
        await users.authenticate('mallory', 'whatever')

        await withRedis(url, async (redis) => {
          const accounts = entries.map(e => keysFor(prefix, userIdFor(e.username)).account)
          t.same((await keysUnder(redis, prefix)).sort(), [...accounts].sort(), 'exactly the account keys were written')
          for (const [i, key] of accounts.entries()) {
            t.equal(key, `${prefix}{user:${userIdFor(entries[i]?.username ?? '')}}:account`, 'the documented key layout')
            t.equal(await redis.exists(key), 1, `${key} exists`)
            t.equal(await redis.pttl(key), -1, `${key} has no TTL: accounts are permanent`)
          }
          const alice = await redis.hgetall(keysFor(prefix, userIdFor('alice')).account)
          t.match(alice.passwordHash, STORED_HASH, 'the hash read straight from Redis')
          t.notMatch(JSON.stringify(alice), 'alice-password', 'the plaintext is nowhere in the account')
        })
      })
    }
  })
}
