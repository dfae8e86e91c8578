import { Type, type Static } from 'typebox'

export const Profile = Type.Object({
  id: Type.String({ description: 'Stable, opaque user id (the `sub` of the access token)' }),
  username: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
}, { $id: 'Profile', description: 'The logged-in user', examples: [{ id: 'He07cKPU57kCCxaeHBrPMB', username: 'demo', email: 'demo@example.com', roles: ['user'] }] })
export type Profile = Static<typeof Profile>

export const AdminResponse = Type.Object({
  message: Type.String(),
  id: Type.String({ description: 'The admin\'s user id' }),
  roles: Type.Array(Type.String()),
}, { $id: 'AdminArea', description: 'Proof of admin access' })
