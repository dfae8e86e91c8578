import { readFile } from 'node:fs/promises'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError } from './config.js'
import { InvalidCurrentPasswordError, NoPasswordError } from './errors.js'
import type { RequestDeadline } from './deadline.js'
import { randomId, userIdFor } from './ids.js'
import { HashingQueue } from './hashing-queue.js'
import { PHC_ARGON2ID, dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js'
import type { AuthStore, ExternalAccount, StoredUser } from './store/index.js'

export const USERNAME_MAX = 128
export const PASSWORD_MAX = 1024
/** A provider's username or email longer than this is cut (a profile field, never a key). */
const EXTERNAL_NAME_MAX = 256

const Role = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' })
const UserEntryBase = {
  username: Type.String({ minLength: 1, maxLength: USERNAME_MAX }),
  roles: Type.Array(Role, { maxItems: 32 }),
  email: Type.Optional(Type.String({ maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$' })),
}
/** One entry of USERS_FILE: a plaintext `password` (hashed at load) or an argon2id `passwordHash`. */
const UserEntry = Type.Union([
  Type.Object({ ...UserEntryBase, password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX }) }, { additionalProperties: false }),
  Type.Object({ ...UserEntryBase, passwordHash: Type.String({ pattern: PHC_ARGON2ID.source }) }, { additionalProperties: false }),
])
export type UserEntry = Static<typeof UserEntry>
const UsersFile = Type.Array(UserEntry)

/** Seeded in development when USERS_FILE is unset; printed at start-up and listed in the README. */
export const DEMO_USERS: UserEntry[] = [
  { username: 'demo', password: 'demo-password', roles: ['user'], email: 'demo@example.com' },
  { username: 'admin', password: 'admin-password', roles: ['user', 'admin'], email: 'admin@example.com' },
]

export async function readUsersFile (path: string): Promise<UserEntry[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`USERS_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    // Not the parser's message: it quotes the text around the error, which may be a password.
    throw new ConfigError(`USERS_FILE: ${path} is not valid JSON`)
  }
  if (Array.isArray(data)) {
    const badHash = data.findIndex(entry => typeof entry?.passwordHash === 'string' && !PHC_ARGON2ID.test(entry.passwordHash))
    if (badHash >= 0) throw new ConfigError(`USERS_FILE: ${path}: /${badHash}/passwordHash must be an argon2id PHC string with m=19456,t=2,p=1 ($argon2id$v=19$m=19456,t=2,p=1$...)`)
  }
  if (!Value.Check(UsersFile, data)) {
    const [first] = Value.Errors(UsersFile, data)
    throw new ConfigError(`USERS_FILE: ${path} is not a valid users file: ${first?.instancePath ?? ''} ${first?.message ?? ''}`.trim())
  }
  const seen = new Set<string>()
  for (const entry of data) {
    if (seen.has(entry.username)) throw new ConfigError(`USERS_FILE: user '${entry.username}' appears twice`)
    seen.add(entry.username)
  }
  return data
}

/** Whether a user entry is one of the demo users with its published password. */
async function isDemoUser (entry: UserEntry): Promise<boolean> {
  const demo = DEMO_USERS.find(d => d.username === entry.username)
  if (demo === undefined || !('password' in demo)) return false
  return 'password' in entry ? entry.password === demo.password : verifyPassword(entry.passwordHash, demo.password)
}

/**
 * Production refuses demo users (their passwords are in the README), wherever they would come
 * from: a USERS_FILE that lists one. Throws ConfigError naming them.
 */
export async function refuseDemoUsers (entries: UserEntry[]): Promise<void> {
  const found: string[] = []
  for (const entry of entries) if (await isDemoUser(entry)) found.push(entry.username)
  if (found.length > 0) {
    throw new ConfigError(`USERS_FILE: ${found.map(u => `'${u}'`).join(', ')} ${found.length > 1 ? 'are demo users' : 'is a demo user'} with the published password; production refuses demo users`)
  }
}

/** Users and their passwords, over the store. */
export class UserDirectory {
  readonly #store: AuthStore
  readonly #hashing: HashingQueue
  /** the configured users (USERS_FILE or demo), seeded at start-up and again after store outages */
  #entries: UserEntry[] = []
  /** the last seeding; logins wait for it, and retry it if it failed */
  #seeded: Promise<string[]> = Promise.resolve([])

  constructor (store: AuthStore, options: { hashing?: HashingQueue } = {}) {
    this.#store = store
    this.#hashing = options.hashing ?? new HashingQueue()
  }

  /**
   * The user when the password matches, else null. Unknown users are checked against a dummy hash
   * so both failures cost one store read and one argon2 verification, which waits its turn in the
   * hashing queue under `client`'s name (known and unknown users alike: no existence oracle).
   * Rejects with LoginBusyError when the queue has no room for it.
   */
  async authenticate (username: string, password: string, client = '', deadline?: RequestDeadline): Promise<StoredUser | null> {
    // A login that would be refused anyway costs no store read (a flood of them is mostly these).
    this.#hashing.refuseIfFull(client)
    await this.#whenSeeded()
    let user = await this.#store.getUser(userIdFor(username), deadline?.at)
    if (user === null && this.#entries.some(entry => entry.username === username)) {
      // A configured user is missing: the store lost its data without a reconnect (a flush, a
      // failover to an empty replica). Seeded again on use, not only on reconnect.
      await this.reseed()
      user = await this.#store.getUser(userIdFor(username), deadline?.at)
    }
    // One await either way, so known and unknown users reach the queue in the order they came.
    const passwordHash = await (user === null ? dummyPasswordHash() : user.passwordHash)
    // Waiting for a turn to hash is not waiting on the store: it moves the deadline (it has its own bound).
    const check = () => this.#hashing.run(client, () => verifyPassword(passwordHash, password))
    const matches = await (deadline === undefined ? check() : deadline.excluding(check))
    return user !== null && matches && user.username === username ? user : null
  }

  /**
   * Replaces the password of the account when `currentPassword` is its password now; throws
   * InvalidCurrentPasswordError otherwise (also when it changed meanwhile, or the account is gone).
   * Both argon2 runs wait their turn in the hashing queue under `client`'s name.
   */
  async changePassword (userId: string, currentPassword: string, newPassword: string, client = '', deadline?: RequestDeadline): Promise<void> {
    this.#hashing.refuseIfFull(client)
    const user = await this.#store.getUser(userId, deadline?.at)
    if (user?.passwordHash === '') throw new NoPasswordError()
    const queued = <T>(work: () => Promise<T>) => {
      const run = () => this.#hashing.run(client, work)
      return deadline === undefined ? run() : deadline.excluding(run)
    }
    // An account gone since the token was checked is checked against the dummy hash: the same work.
    const currentHash = user?.passwordHash ?? await dummyPasswordHash()
    if (!await queued(() => verifyPassword(currentHash, currentPassword)) || user === null) throw new InvalidCurrentPasswordError()
    const newHash = await queued(() => hashPassword(newPassword))
    // Compare-and-set: a change that raced this one (with the old password too) wins alone.
    if (!await this.#store.replacePasswordHash(userId, currentHash, newHash, deadline?.at)) throw new InvalidCurrentPasswordError()
  }

  /**
   * The account of an identity an OpenID provider vouched for, linked by its id (issuer and sub,
   * never a username or an email): created at its first sign-in, its username, email and roles
   * those of the latest. Resolves with what a session needs.
   */
  async linkExternal (identity: ExternalAccount, deadline?: RequestDeadline): Promise<{ id: string, roles: string[], epoch: string }> {
    // What a provider says is bounded like what USERS_FILE may say: a name, an address, 32 roles.
    const account: ExternalAccount = {
      id: identity.id,
      username: identity.username.slice(0, EXTERNAL_NAME_MAX),
      email: identity.email === null ? null : identity.email.slice(0, EXTERNAL_NAME_MAX),
      roles: identity.roles.filter(role => role.length <= 64).slice(0, 32),
    }
    const epoch = await this.#store.saveExternalAccount(account, randomId(), deadline?.at)
    return { id: account.id, roles: account.roles, epoch }
  }

  /** Password checks running and waiting now (the hashing queue's load). */
  get hashingLoad (): { running: number, waiting: number, clients: number } {
    return this.#hashing.load
  }

  /**
   * The demo users the store holds with their published passwords: a development instance that
   * once ran against this Redis would have seeded them. Production refuses to start while any is there.
   */
  async demoAccounts (): Promise<string[]> {
    const found: string[] = []
    for (const demo of DEMO_USERS) {
      const user = await this.#store.getUser(userIdFor(demo.username))
      if (user !== null && await isDemoUser({ username: user.username, roles: user.roles, passwordHash: user.passwordHash })) found.push(demo.username)
    }
    return found
  }

  /**
   * Creates the configured users that do not exist yet (existing ones keep their password and roles)
   * and remembers them for reseed(). Resolves with the usernames it created.
   */
  async seed (entries: UserEntry[]): Promise<string[]> {
    this.#entries = entries
    this.#seeded = this.#createMissing()
    return this.#seeded
  }

  /**
   * Seeds again, after the store came back from an outage (a Redis without persistence comes back
   * empty). Until it succeeds logins wait for it; if it fails, the next login retries it and answers
   * 503 while it keeps failing, never a 401 for a user who merely is not there yet.
   */
  reseed (): Promise<string[]> {
    // One at a time: every login that finds a user missing after a flush joins the one under way.
    this.#reseeding ??= this.#createMissing().finally(() => { this.#reseeding = undefined })
    this.#seeded = this.#reseeding
    return this.#seeded
  }

  #reseeding: Promise<string[]> | undefined

  async #whenSeeded (): Promise<void> {
    try {
      await this.#seeded
    } catch {
      await this.reseed()
    }
  }

  async #createMissing (): Promise<string[]> {
    const created: string[] = []
    for (const entry of this.#entries) {
      const id = userIdFor(entry.username)
      if (await this.#store.getUser(id) !== null) continue
      const passwordHash = 'passwordHash' in entry ? entry.passwordHash : await hashPassword(entry.password)
      const user = { id, username: entry.username, email: entry.email ?? null, roles: entry.roles, passwordHash, epoch: randomId() }
      if (await this.#store.createUserIfAbsent(user)) created.push(entry.username)
    }
    return created
  }
}
