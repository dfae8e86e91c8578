import { ErrorResponse } from './common.js'

/** The schemas with an `$id`, registered once by plugins/schemas.ts and referenced with ref(). */
export const SHARED_SCHEMAS = [ErrorResponse]
