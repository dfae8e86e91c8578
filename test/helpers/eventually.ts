/**
 * Whether `check` comes true within `ms`, asked every `everyMs` (for what settles by itself: a
 * reconnect, a reseed, a server starting or closing). A check that throws counts as not yet.
 */
export async function eventually (check: () => Promise<boolean>, ms = 8000, everyMs = 100): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check().catch(() => false)) return true
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  return false
}
