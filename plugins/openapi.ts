import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { packageInfo } from '../src/package-info.js'

interface OpenApiDocument {
  components?: { schemas?: Record<string, { required?: string[] }> }
  paths?: Record<string, Record<string, { requestBody?: { required?: boolean, content?: Record<string, { schema?: { $ref?: string } }> } }>>
}

/**
 * @fastify/swagger marks every request body required. A body whose schema requires no property may
 * be left out altogether (refresh and logout then read the cookies): say so, or generated clients
 * would insist on one.
 */
function optionalBodiesNotRequired (document: OpenApiDocument): OpenApiDocument {
  for (const operation of Object.values(document.paths ?? {}).flatMap(methods => Object.values(methods))) {
    const ref = operation.requestBody?.content?.['application/json']?.schema?.$ref
    const component = ref === undefined ? undefined : document.components?.schemas?.[ref.replace('#/components/schemas/', '')]
    if (operation.requestBody !== undefined && component !== undefined && (component.required ?? []).length === 0) {
      operation.requestBody.required = false
    }
  }
  return document
}

interface ResponseSchema { $ref?: string, examples?: unknown[], description?: string, headers?: object }

/**
 * A response that is a $ref with `examples` beside it loses them on the way into the document
 * (@fastify/swagger resolves the reference alone). Said as a media type with an example, it keeps it.
 */
function responseExamplesKept (schema: { response?: Record<string, ResponseSchema> } | undefined) {
  if (schema?.response === undefined) return schema
  const response = Object.fromEntries(Object.entries(schema.response).map(([status, value]) => {
    if (value.$ref === undefined || value.examples === undefined) return [status, value]
    const { $ref, examples, ...rest } = value
    // Several answers to one status (a 401 that means "refresh" or "sign in again"): named by code.
    const shown = examples.length === 1
      ? { example: examples[0] }
      : { examples: Object.fromEntries(examples.map((example, i) => [(example as { code?: string }).code ?? `example${i + 1}`, { value: example }])) }
    return [status, { ...rest, content: { 'application/json': { schema: { $ref }, ...shown } } }]
  }))
  return { ...schema, response }
}

/**
 * The OpenAPI 3.1 document, built from the routes' schemas, and Swagger UI at /docs (JSON at
 * /docs/json, YAML at /docs/yaml). Registered before the routes so that it sees every one of them.
 */
export default fp(async function openapi (fastify) {
  const { config } = fastify
  const info = packageInfo()
  await fastify.register(fastifySwagger, {
    transform: ({ schema, url }) => ({ schema: responseExamplesKept(schema as Parameters<typeof responseExamplesKept>[0]) as typeof schema, url }),
    transformObject: (document) => 'openapiObject' in document
      ? optionalBodiesNotRequired(document.openapiObject as OpenApiDocument) as typeof document.openapiObject
      : document.swaggerObject,
    // Components are named by their $id (Error, Profile, ...), not def-0, def-1.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Token-auth API',
        version: info.version,
        description: `${info.description}. Log in for a short-lived JWT access token and an opaque refresh token; ` +
          'send the access token as `Authorization: Bearer` (or, in cookie mode, the `access_token` cookie).',
      },
      servers: [{ url: '/', description: 'this server' }],
      tags: [
        { name: 'auth', description: 'Log in, refresh, log out' },
        { name: 'api', description: 'Protected resources' },
        { name: 'oidc', description: 'Sign in through an OpenID Connect provider (Auth0, Entra ID, Google): browsers by redirect, mobile apps with an ID token' },
        { name: 'health', description: 'Liveness and readiness' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access token from /auth/login, /auth/refresh or a sign-in through a provider; or an access token of a provider OIDC_PROVIDERS_FILE trusts with an `audience` (routes about sessions need one of this API\'s)' },
          cookieAuth: { type: 'apiKey', in: 'cookie', name: 'access_token', description: 'Cookie mode: set by /auth/login with `X-Auth-Mode: cookie`' },
        },
      },
    },
  })
  if (config.docsEnabled) {
    await fastify.register(fastifySwaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, deepLinking: true },
      // Its own CSP (it replaces the API's deny-all one under /docs), with one change: Swagger UI
      // sets inline style attributes at run time, which no hash can allow (the browser test saw
      // them blocked). Styles run no script; script-src stays hash-pinned.
      staticCSP: true,
      transformStaticCSP: (header: string) => header.replace(/style-src [^;]*/, "style-src 'self' 'unsafe-inline'"),
    })
  }
}, { name: 'openapi', dependencies: ['config'] })
