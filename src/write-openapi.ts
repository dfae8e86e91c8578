import { writeFile } from 'node:fs/promises'
import { renderOpenApi } from './openapi.js'

/** `npm run openapi`: writes openapi.yaml, the checked-in copy of the document the app serves. */
await writeFile('openapi.yaml', await renderOpenApi())
process.stdout.write('wrote openapi.yaml\n')
