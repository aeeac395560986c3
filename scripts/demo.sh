#!/usr/bin/env bash
# The main job end to end, on a private root: the content store and namespaces at work.
# Grows with each capability: content, pull, unpack, run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
registry_pid=
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # Containers first: their rootfs mounts and monitors live under the root.
  ids=$(node dist/berth.cjs ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && node dist/berth.cjs rm -f $ids >/dev/null 2>&1
  # The root's runtime directory under /run goes with the root.
  rm -rf "$(node --input-type=module -e "import { Berth } from './dist/src/index.js'; const b = await Berth.open({ root: process.argv[1] }); console.log(b.runDir); b.close()" "$BERTH_ROOT" 2>/dev/null || echo /nonexistent)"
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  rm -rf "$work"
}
trap cleanup EXIT
export BERTH_ROOT="$work/root"
berth() { node dist/berth.cjs "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "berth $*"; berth "$@"; }

run version

# A blob worth storing: a 64 MiB file of random bytes.
head -c $((64 << 20)) /dev/urandom > "$work/layer.bin"
run content add "$work/layer.bin"
digest=$(berth content add -q "$work/layer.bin")

# The same bytes added in the k8s.io namespace are shared, not stored twice.
run -n k8s.io content add -q -l team=platform "$work/layer.bin"
run content ls
run -n k8s.io content ls
step "ls -l $BERTH_ROOT/content/blobs/sha256   # one file for both namespaces"
ls -l "$BERTH_ROOT/content/blobs/sha256"

# A blob added only in k8s.io stays invisible in default.
echo '{"hello":"k8s"}' > "$work/doc.json"
only=$(berth -n k8s.io content add -q "$work/doc.json")
step "berth content info $only   # only k8s.io references it"
berth content info "$only" || echo "(exit $?: not visible in the default namespace)"
run -n k8s.io content info "$only"

# An ingest killed halfway resumes where it stopped.
step "head -c 32M big.bin > fifo & berth content add --ref demo - < fifo   ... then kill -9 berth"
big="$work/big.bin"
head -c $((96 << 20)) /dev/urandom > "$big"
mkfifo "$work/fifo"
node dist/berth.cjs content add --ref demo -q - < "$work/fifo" &
pid=$!
exec 3> "$work/fifo"
head -c $((32 << 20)) "$big" >&3
while [ "$(berth content active --format json | grep -c '"offset": 33554432')" = 0 ]; do sleep 0.1; done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
exec 3>&-
run content active
run content add --ref demo "$big"
run content active

run namespace ls
run info
run content verify
run -n k8s.io content rm "$digest"
step "ls $BERTH_ROOT/content/blobs/sha256   # still there: default references it"
ls "$BERTH_ROOT/content/blobs/sha256"
# Images through a registry: the reference registry on 127.0.0.1, an image built by umoci and
# pushed by skopeo (the peers), pulled and pushed again by berth with its digests intact.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$work/registry.yml" 2>/dev/null &
registry_pid=$!
until node -e "fetch('http://127.0.0.1:$port/v2/').then(()=>process.exit(0),()=>process.exit(1))"; do sleep 0.1; done
reg="127.0.0.1:$port"
step "umoci: build an image; skopeo: push it to $reg/demo/hello:1"
umoci init --layout "$work/layout" >/dev/null
umoci new --image "$work/layout:hello" >/dev/null
umoci config --image "$work/layout:hello" --config.cmd /hello.txt >/dev/null
umoci unpack --rootless --image "$work/layout:hello" "$work/bundle" >/dev/null
echo 'hello from berth' > "$work/bundle/rootfs/hello.txt"
head -c $((8 << 20)) /dev/urandom > "$work/bundle/rootfs/payload.bin"
umoci repack --image "$work/layout:hello" "$work/bundle" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:hello" "docker://$reg/demo/hello:1"
run pull "$reg/demo/hello:1"
run images
# Unpacked on pull: one snapshot per layer stack (chainID); mount shows the image's filesystem.
run snapshot tree
run snapshot usage
mkdir -p "$work/mnt"
run image mount "$reg/demo/hello:1" "$work/mnt"
step "cat $work/mnt/hello.txt; ls -l $work/mnt"
cat "$work/mnt/hello.txt"
ls -l "$work/mnt"
run image unmount "$work/mnt"
# The same image with the native snapshotter: full copies instead of overlay layers.
run --snapshotter native image unpack "$reg/demo/hello:1"
run --snapshotter native images
run image inspect "$reg/demo/hello:1"
run image history "$reg/demo/hello:1"
run tag "$reg/demo/hello:1" "$reg/copies/hello:2"
run push "$reg/copies/hello:2"
step "skopeo inspect docker://$reg/copies/hello:2   # the same digest berth pushed"
skopeo inspect --tls-verify=false "docker://$reg/copies/hello:2" | grep -E '"(Digest|Architecture)"'
run rmi "$reg/copies/hello:2"
run images --format json

# Containers: an image made of Debian's busybox-static with `berth import` (docker import),
# pushed to the registry, removed, pulled back with the same image ID, run under runc with conmon.
mkdir -p "$work/busybox/bin" "$work/busybox/etc" "$work/busybox/tmp" "$work/busybox/srv"
cp /usr/bin/busybox "$work/busybox/bin/busybox"
for a in $(/usr/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/busybox/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' > "$work/busybox/etc/passwd"
printf 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n' > "$work/busybox/etc/group"
chmod 1777 "$work/busybox/tmp"
bb="$reg/demo/busybox:1"
step "tar -C busybox -c . | berth import -c 'CMD [\"sh\"]' -c 'WORKDIR /srv' - $bb"
tar --numeric-owner -C "$work/busybox" -c . | berth import -c 'CMD ["sh"]' -c 'WORKDIR /srv' - "$bb"
id=$(berth image inspect "$bb" --format json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].Id))')
run images
run push "$bb"
run rmi "$bb"
run pull "$bb"
step "the image ID after the round trip through the registry"
again=$(berth image inspect "$bb" --format json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].Id))')
echo "before: $id"
echo "after:  $again"
[ "$id" = "$again" ] || { echo "the image ID changed" >&2; exit 1; }
run run --rm "$bb" echo hello from a container
run run --rm -u app "$bb" id
step "berth run --rm $bb sh -c 'exit 7'; echo \$?"
berth run --rm "$bb" sh -c 'exit 7' || echo "exit code $?"
run run -d --name ticker "$bb" sh -c 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done'
sleep 1
run ps
run logs --tail 3 ticker
run exec ticker sh -c 'echo written by exec > /srv/note; ls /srv'
run top ticker
run stop -t 1 ticker
run ps -a
run commit -m 'a note' -c 'CMD ["cat", "/srv/note"]' ticker "$reg/demo/noted:1"
run run --rm "$reg/demo/noted:1"
run rm ticker

# The daemon: the docker CLI, unmodified, on the same images and containers as berth's CLI.
sock="$work/berth.sock"
step "berth daemon -H unix://$sock &"
node dist/berth.cjs daemon -H "unix://$sock" --pidfile "$work/berth.pid" 2>"$work/daemon.log" &
daemon_pid=$!
until docker -H "unix://$sock" version >/dev/null 2>&1; do sleep 0.1; done
dk() { step "docker $*"; docker -H "unix://$sock" "$@"; }
dk version --format 'client {{.Client.Version}}, server {{.Server.Version}} (API {{.Server.APIVersion}})'
dk images
run images
dk run --rm "$bb" echo hello through the Engine API
dk run -d --name web "$bb" sleep 60
run ps
dk exec web sh -c 'echo exec through the daemon; exit 3' || echo "exit code $?"
dk rm -f web
kill "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=

# Disk: every size of one image, the store's usage, a check of everything, and getting it all back.
run image size "$reg/demo/noted:1"
run system df -v
run image verify "$bb"
run fsck
run system prune -a -f

printf '\nThe demo root was %s (removed on exit).\n' "$BERTH_ROOT"
