import { Type, type Static } from 'typebox'

/** The provider's `name` in OIDC_PROVIDERS_FILE. */
export const ProviderParams = Type.Object({
  name: Type.String({ maxLength: 64, description: 'The provider\'s `name` in OIDC_PROVIDERS_FILE' }),
})

export const SignInStartQuery = Type.Object({
  return_to: Type.Optional(Type.String({
    maxLength: 2048,
    description: 'Where the browser goes once signed in: a path on this API, or a URL on its origin or on one of OIDC_RETURN_ORIGINS. Default: this API\'s `/`.',
  })),
})

/** What the provider sends back (RFC 6749 §4.1.2); other parameters are passed on to the checks. */
export const SignInCallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ maxLength: 4096 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 2048 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
})

export const IdTokenExchangeBody = Type.Object({
  id_token: Type.String({ minLength: 1, maxLength: 16_384, description: 'The ID token the provider gave the app (its `aud` must be the provider\'s `clientId`)' }),
  nonce: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'The nonce the app sent the provider: the ID token must carry the same one' })),
}, {
  $id: 'IdTokenExchangeRequest',
  description: 'An ID token a mobile app got from the provider, to exchange for a session here',
  examples: [{ id_token: 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiIuLi4ifQ.c2lnbmF0dXJl', nonce: 'n-0S6_WzA2Mj' }],
})
export type IdTokenExchangeBody = Static<typeof IdTokenExchangeBody>
