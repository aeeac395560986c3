#!/usr/bin/env bash
# Installs what berth needs on a fresh Debian machine, then builds it. Idempotent and quick when
# nothing changed: Debian packages only when missing (as root), npm ci only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: compilers for the native addons (better-sqlite3 and berth's own build from source
# here), the real registry and the peers the tests use as oracles (docker-registry, skopeo, umoci),
# zstd (zstd layers), containerd (the unpack and run benchmarks' peer), openssl (test certificates),
# time (peak memory in benchmarks); for containers: runc (the OCI runtime), conmon (the monitor that
# outlives the CLI), tini (`run --init`), procps (`top`), bsdutils (`script`: a pty for `exec -t`
# without a terminal) and busybox-static (the tests' image); docker.io (a Docker engine the archive
# tests start on a private root and socket: docker save/load against berth's; its CLI 20.10 drives berth's daemon),
# python3-docker (docker-py, a client of the daemon) and docker-compose (1.29, driven through the daemon); for
# networks: containernetworking-plugins (the CNI plugins: bridge, host-local, portmap, loopback), iptables (the
# networks' forwarding, isolation and masquerading rules) and iproute2 (`ip netns`); for builds: buildah (the
# peer berth build is held against) and bzip2 and xz-utils (ADD and build contexts in those compressions); for
# pods (CRI): catatonit (the pause process of a pod's sandbox).
deb_packages=(g++ make python3 coreutils time openssl zstd docker-registry skopeo umoci containerd runc conmon tini procps bsdutils busybox-static docker.io python3-docker docker-compose containernetworking-plugins iptables iproute2 buildah bzip2 xz-utils catatonit)
missing=()
for p in "${deb_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root to install them): ${missing[*]}" >&2
    exit 1
  fi
fi

# Native addons build against the machine's Node headers; .npmrc sets nodedir=/usr for that.
stamp=node_modules/.berth-setup-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci (builds better-sqlite3 from source; about a minute)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# berth's own addon (native/): mknod, xattrs, nanosecond utimensat, flock. node-gyp comes with npm.
native_want="$(cat native/binding.gyp native/*.c | sha256sum | cut -d' ' -f1) $(node --version)"
if [ ! -f native/build/Release/berth_native.node ] || [ "$(cat native/build/.stamp 2>/dev/null)" != "$native_want" ]; then
  echo "setup: building native/ (node-gyp)"
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  (cd native && node "$gyp" rebuild --nodedir=/usr --loglevel=error >/dev/null)
  echo "$native_want" > native/build/.stamp
fi

npx tsc -p tsconfig.json
node scripts/bundle.mjs
