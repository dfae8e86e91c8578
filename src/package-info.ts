import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface PackageInfo {
  name: string
  version: string
  description: string
}

/**
 * This project's package.json: the nearest one above this module, which is src/ when run from
 * source and dist/src/ when built (the Docker image copies package.json beside dist/).
 */
export function packageInfo (): PackageInfo {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above this module')
    dir = parent
  }
  const { name, version, description } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageInfo
  return { name, version, description }
}
