import { Type } from 'typebox'

export const HealthResponse = Type.Object({
  status: Type.Literal('ok'),
}, { $id: 'Health', description: 'The process is alive' })

export const ReadyResponse = Type.Object({
  status: Type.Literal('ok'),
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')], { description: 'The token store in use' }),
}, { $id: 'Ready', description: 'The token store answers' })
