import { Type, type Static } from 'typebox'

export const Profile = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
})
export type Profile = Static<typeof Profile>

export const AdminResponse = Type.Object({
  message: Type.String(),
  id: Type.String(),
  roles: Type.Array(Type.String()),
})
