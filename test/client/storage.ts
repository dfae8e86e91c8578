import type { StoredTokens, TokenStorage } from '../../client/src/index.js'

/** A TokenStorage with async methods, as Keychain or SecureStore have. */
export function memoryStorage (initial: StoredTokens | null = null): TokenStorage & { value: StoredTokens | null, clears: number } {
  const storage = {
    value: initial,
    clears: 0,
    async get () { return storage.value },
    async set (tokens: StoredTokens) { storage.value = tokens },
    async clear () { storage.value = null; storage.clears++ },
  }
  return storage
}
