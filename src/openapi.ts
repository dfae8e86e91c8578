import { buildApp } from './app.js'
import { loadConfig } from './config.js'

/**
 * The OpenAPI document as the app serves it at /docs/yaml, built from the routes' schemas. The
 * configuration does not change it; a development one is used so that it needs no Redis.
 */
export async function renderOpenApi (): Promise<string> {
  const app = await buildApp(loadConfig({ NODE_ENV: 'development', LOG_LEVEL: 'silent', DOCS_ENABLED: 'true' }))
  try {
    await app.ready()
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
  }
}
