import { Type, type Static } from 'typebox'

/** Every error this API answers with: `{statusCode, error, message}` plus `code` where one applies. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
  error: Type.String(),
  message: Type.String(),
  code: Type.Optional(Type.String()),
})
export type ErrorResponse = Static<typeof ErrorResponse>

/** Error responses a route declares, by status code. */
export function errorResponses (...codes: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(codes.map(code => [code, ErrorResponse]))
}

/** An empty 204 answer. */
export const NoContent = Type.Null({ description: 'No content' })
