import fp from 'fastify-plugin'
import { SHARED_SCHEMAS } from '../schemas/index.js'

/** Registers every shared schema once, by `$id`, for validation, serialization and OpenAPI components. */
export default fp(async function schemas (fastify) {
  for (const schema of SHARED_SCHEMAS) fastify.addSchema(schema)
}, { name: 'schemas' })
