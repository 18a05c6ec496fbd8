#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: build kubexm, start a local copy of the component
# upstreams, build a Kubernetes 1.32 bundle for amd64 and arm64 from manifests/demo.yaml,
# carry the self-extracting `install` to a "host" directory, and there verify and extract it
# without network access. Everything it makes goes to ./out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing build dependencies (Debian packages)"
bash tools/install-deps.sh

step "building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release
bin=build/release/bin

demo=out/demo
rm -rf "$demo"
mkdir -p "$demo"

step "a local copy of the upstreams (dl.k8s.io, github.com releases, get.helm.sh, ...) from Debian's binaries"
cache=${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test}
mkdir -p "$cache"
key=$(cat tools/make-mirror.py manifests/kubernetes-1.32.yaml | sha256sum | cut -c1-16)
mirror="$cache/mirror-$key"
[ -f "$mirror/checksums.yaml" ] ||
  python3 tools/make-mirror.py --release manifests/kubernetes-1.32.yaml --out "$mirror" --debs "$cache/debs"
python3 tools/mirror-server.py "$mirror" --port-file "$demo/port" --log "$demo/server.log" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$demo/port" ] && break; sleep 0.05; done
port=$(cat "$demo/port")
mirrors=()
for host in dl.k8s.io github.com get.helm.sh download.docker.com storage.googleapis.com; do
  mirrors+=(--mirror "https://$host=http://127.0.0.1:$port/$host")
done
echo "serving $mirror on http://127.0.0.1:$port"

# The mirror's binaries are Debian's, not upstream's: the catalogue's pinned digests (the real
# upstream ones) would rightly refuse them, so the demo's manifest pins the mirror's own.
cat manifests/demo.yaml "$mirror/checksums.yaml" >"$demo/demo-site.yaml"

step "kubexm-builder build: resolve, download (verified, arch-checked), lock, pack"
SOURCE_DATE_EPOCH=1700000000 "$bin/kubexm-builder" build -f "$demo/demo-site.yaml" -o "$demo/dist" \
  --cache "$demo/cache" "${mirrors[@]}"
(cd "$demo/dist" && sha256sum -c SHA256SUMS)

step "the mirror goes away; the same bundle is rebuilt from the lock and the cache alone"
kill $server
SOURCE_DATE_EPOCH=1700000000 "$bin/kubexm-builder" -q build -f "$demo/demo-site.yaml" --lock "$demo/dist/kubexm.lock" \
  -o "$demo/rebuild" --cache "$demo/cache"
cmp "$demo/dist/install" "$demo/rebuild/install" && echo "byte-identical: $(sha256sum "$demo/rebuild/install" | cut -c1-64)"

step "the USB stick: copy install to the host and inspect it"
mkdir -p "$demo/host"
cp "$demo/dist/install" "$demo/host/install"
"$demo/host/install" info

# An air-gapped host: no network namespace access at all, when the kernel lets us make one.
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
  echo "(running the installer in a network namespace with no interfaces: no network)"
fi

step "./install verify (every byte, every digest, no writes)"
"${offline[@]}" "$demo/host/install" verify

step "./install extract (verified while writing, staged, moved into place)"
"${offline[@]}" "$demo/host/install" extract "$demo/host/kubexm-dist"

step "the binaries, per arch, as the ELF headers say"
file "$demo/host/kubexm-dist"/bin/*/etcd/*/etcd | sed "s|$demo/host/kubexm-dist/||; s|, BuildID.*||"

step "checking the extraction by hand with coreutils"
(cd "$demo/host/kubexm-dist" && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c SHA256SUMS: all $(wc -l <SHA256SUMS) files OK")

step "running it again changes nothing"
"${offline[@]}" "$demo/host/install" extract "$demo/host/kubexm-dist"

step "done"
echo "bundle digest: $(sha256sum "$demo/host/kubexm-dist/SHA256SUMS" | cut -d' ' -f1)"
echo "everything is under $demo"
