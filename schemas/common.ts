import { Type, type Static, type TSchema, type TUnsafe } from 'typebox'

/** Every error this API answers with: `{statusCode, error, message}` plus `code` where one applies. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status code, repeated' }),
  error: Type.String({ description: 'The HTTP status text', examples: ['Unauthorized'] }),
  message: Type.String({ description: 'What went wrong, for a developer to read' }),
  code: Type.Optional(Type.String({ description: 'A stable machine-readable code, where one applies', examples: ['INVALID_REFRESH_TOKEN'] })),
}, { $id: 'Error', description: 'Every error response' })
export type ErrorResponse = Static<typeof ErrorResponse>

/**
 * A reference to a schema registered once (plugins/schemas.ts) under its `$id`: OpenAPI shows it
 * as a named component, and handlers keep the static type of the schema it points to.
 */
export function ref<T extends TSchema> (schema: T): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id
  if (typeof id !== 'string') throw new Error('ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(id))
}

/** Error responses a route declares, by status code. */
export function errorResponses (...codes: number[]) {
  return Object.fromEntries(codes.map(code => [code, ref(ErrorResponse)]))
}

/** An empty 204 answer. */
export const NoContent = Type.Null({ description: 'No content' })
