/** Whether `check` comes true within `ms`, asked every 100 ms (for what settles by itself: a reconnect, a reseed). */
export async function eventually (check: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return false
}
