import { Type } from 'typebox'

export const HealthResponse = Type.Object({
  status: Type.Literal('ok'),
})

export const ReadyResponse = Type.Object({
  status: Type.Literal('ok'),
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
})
