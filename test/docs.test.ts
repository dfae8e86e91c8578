import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import t from 'tap'

// The docs stand on their own: every relative link resolves inside the repository, and the README's
// layout names every file of the core.

const ROOT = resolve('.')

function markdownFiles (): string[] {
  return ['README.md', ...readdirSync('docs').filter(name => name.endsWith('.md')).map(name => join('docs', name))]
}

/** Inline links and images, [text](target) and ![alt](target), outside code spans and fences. */
function linksOf (text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '')
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map(match => match[1] ?? '')
}

t.test('every relative link in README.md and docs/ resolves to a file inside the repository', async (t) => {
  let checked = 0
  for (const file of markdownFiles()) {
    for (const link of linksOf(readFileSync(file, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('#')) continue
      const target = resolve(dirname(file), decodeURIComponent(link.split('#')[0] ?? ''))
      t.ok(target === ROOT || target.startsWith(ROOT + sep), `${file}: ${link} stays inside the repository`)
      t.ok(existsSync(target), `${file}: ${link} exists`)
      checked++
    }
  }
  t.ok(checked >= 10, `${checked} relative links checked`)
})

t.test('nothing in README.md or docs/ points outside the repository or at the tracker', async (t) => {
  for (const file of markdownFiles()) {
    const text = readFileSync(file, 'utf8')
    t.notMatch(text, /\.\.\/shared|DESIGN\.md/, `${file}: no link to an outside contract`)
    t.notMatch(text, /\bissues? \d+\b|the issue\b/i, `${file}: no "issue N"`)
  }
})

t.test('the README\'s layout names every file under src/', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  const layout = readme.slice(readme.indexOf('## Layout'))
  const walk = (dir: string): string[] => readdirSync(dir).flatMap(name => statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)])
  const files = walk('src')
  t.ok(files.length > 30)
  for (const file of files) {
    const name = relative('src', file).split(sep).at(-1) ?? ''
    t.match(layout, `\`${name}\``, `${file} is in the layout`)
  }
})
