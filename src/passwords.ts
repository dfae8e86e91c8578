import { hash, verify, type Algorithm, type Options } from '@node-rs/argon2'
import { randomSecret } from './ids.js'

/** OWASP's argon2id profile: 19 MiB, 2 passes, 1 lane. Runs on libuv's pool, off the event loop. */
export const ARGON2_OPTIONS: Options = {
  algorithm: 2 as Algorithm, // Argon2id (an ambient const enum cannot be read under isolatedModules)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
}

/**
 * A PHC string of argon2id with exactly these parameters. Others are refused: weaker ones are weaker,
 * and any other cost would make that user's failed logins time differently from the dummy hash's.
 */
export const PHC_ARGON2ID = new RegExp(
  `^\\$argon2id\\$v=19\\$m=${ARGON2_OPTIONS.memoryCost},t=${ARGON2_OPTIONS.timeCost},p=${ARGON2_OPTIONS.parallelism}\\$[A-Za-z0-9+/]+\\$[A-Za-z0-9+/]+$`
)

export function hashPassword (password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS)
}

/**
 * Checks a password against a PHC hash. A malformed hash is a mismatch, never an exception that
 * could tell a caller more than "no".
 */
export async function verifyPassword (passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false
  }
}

/**
 * A hash of a random password, made once per process: logins for unknown users are checked
 * against it so they cost what a wrong password for a real user costs.
 */
let dummyHash: Promise<string> | undefined
export function dummyPasswordHash (): Promise<string> {
  dummyHash ??= hashPassword(randomSecret())
  return dummyHash
}
