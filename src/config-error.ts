/** Raised when the environment cannot give a safe configuration; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}
