import t from 'tap'
import { OncePerWindow } from '../src/once-per-window.js'

t.test('a key is reported once until its window ends, then once in the next', async (t) => {
  let now = 1_000
  const reported = new OncePerWindow(10, () => now)
  t.equal(reported.firstInWindow('a', 61_000), true, 'the first event of a window')
  t.equal(reported.firstInWindow('a', 61_000), false, 'the second')
  t.equal(reported.firstInWindow('b', 61_000), true, 'another key has its own window')
  now = 60_999
  t.equal(reported.firstInWindow('a', 61_000), false, 'still the same window')
  now = 61_000
  t.equal(reported.firstInWindow('a', 121_000), true, 'the first event of the next window')
  t.equal(reported.firstInWindow('a', 121_000), false)
})

t.test('memory is bounded: past the bound the oldest reported keys are forgotten (and would be reported again)', async (t) => {
  const reported = new OncePerWindow(3, () => 0)
  for (const key of ['a', 'b', 'c', 'd']) t.equal(reported.firstInWindow(key, 60_000), true, key)
  t.equal(reported.size, 3, 'never more keys than the bound')
  t.equal(reported.firstInWindow('d', 60_000), false, 'the newest are remembered')
  t.equal(reported.firstInWindow('c', 60_000), false)
  t.equal(reported.firstInWindow('a', 60_000), true, 'the oldest was forgotten')
  t.equal(reported.size, 3)
  t.equal(reported.firstInWindow('c', 60_000), false, 'c is still remembered: b was the oldest left')
})
