import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'

/** Starts the API: validated config, the assembled app, graceful shutdown on SIGTERM/SIGINT. */
async function start (): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`refusing to start: ${err.message}\n`)
    process.exit(1)
  }

  let app
  try {
    app = await buildApp(config)
  } catch (err) {
    process.stderr.write(`refusing to start: ${(err as Error).message}\n`)
    process.exit(1)
  }

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })

  if (config.jwt.secretGenerated) app.log.warn('JWT_SECRET is unset: signing with a random key for this process only')
  await app.listen({ port: config.port, host: config.host })
}

await start()
