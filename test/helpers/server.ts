import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'

export interface Run { code: number | null, stdout: string, stderr: string }

const API_VARIABLES = /^(NODE_ENV|PORT|HOST|REDIS_URL|REDIS_KEY_PREFIX|JWT_\w+|ACCESS_TOKEN_TTL|REFRESH_TOKEN_TTL|USERS_FILE|CORS_ORIGINS|RATE_LIMIT_\w+|SESSIONS_PER_USER_MAX|HTTP_\w+|TRUST_PROXY|DOCS_ENABLED|LOG_LEVEL)$/
function withoutApiVariables (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !API_VARIABLES.test(name)))
}

const SERVER = 'dist/src/server.js'

/** Runs the built server exactly as `npm start` and the Docker image do. */
export function startServer (env: NodeJS.ProcessEnv) {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: npm test builds it first (npm run build)`)
  const child = spawn(process.execPath, ['--enable-source-maps', SERVER], {
    // The parent's environment (tap's coverage hooks ride on it) minus anything the API reads.
    env: { ...withoutApiVariables(process.env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise<Run>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })))
  /** Resolves once `predicate` holds for the output so far (or the process ended, or 20 s passed). */
  const output = async (predicate: (stdout: string) => boolean) => {
    const deadline = Date.now() + 20_000
    while (!predicate(stdout) && Date.now() < deadline && child.exitCode === null) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }
  const listening = () => output(text => text.includes('Server listening'))
  return { child, exited, listening, output }
}
