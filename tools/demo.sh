#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: build kubexm, lay out a small kubexm-dist tree,
# pack it, carry the self-extracting `install` to a "host" directory, and there verify and
# extract it without network access. Everything it makes goes to ./out/demo.
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

step "laying out a kubexm-dist tree (binaries per arch, node configs, repository metadata)"
python3 tools/gen-tree.py "$demo/tree" --size 24M
find "$demo/tree" -maxdepth 3 -type d | sort | head -12

step "kubexm-builder pack"
SOURCE_DATE_EPOCH=1700000000 "$bin/kubexm-builder" pack --dir "$demo/tree" -o "$demo/dist"
(cd "$demo/dist" && sha256sum -c SHA256SUMS)

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

step "checking the extraction by hand with coreutils"
(cd "$demo/host/kubexm-dist" && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c SHA256SUMS: all $(wc -l <SHA256SUMS) files OK")

step "running it again changes nothing"
"${offline[@]}" "$demo/host/install" extract "$demo/host/kubexm-dist"

step "done"
echo "bundle digest: $(sha256sum "$demo/host/kubexm-dist/SHA256SUMS" | cut -d' ' -f1)"
echo "everything is under $demo"
