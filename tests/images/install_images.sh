#!/usr/bin/env bash
# install images on an air-gapped host: a real containerd started with no network
# (unshare -n) and the installer run with none either. The bundle's amd64 images go in
# under their references at the locked digests, and a container runs from one; a dry run
# and a second run change nothing; a bundle altered after the build, a runtime that is not
# running and a bundle without this host's arch are refused with nothing named.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"
source "$KUBEXM_SOURCE/tests/images/containerd.sh"

[ "$(uname -m)" = x86_64 ] || fail "this test expects an amd64 machine"
ensure_mirror
start_mirror "$MIRROR_ROOT"
start_image_registry
images_manifest "$WORK/site.yaml"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$WORK/cache" \
  "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed"; }
stop_registry
stop_mirror
BUNDLE="$WORK/out/install"
start_containerd "$WORK/containerd"
images() { unshare -n "$BUNDLE" images --address "$CONTAINERD_ADDRESS" "$@"; }
# What containerd holds: images and content, to show a run changed nothing.
state() {
  containerd_images | sort
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io content ls -q | sort
}

# 1. Refusals that leave containerd as it was.
empty=$(state)
expect_failure 1 "cannot reach containerd at $WORK/nowhere.sock: .*start it \(systemctl start containerd\) or give its socket with --address" \
  unshare -n "$BUNDLE" images --address "$WORK/nowhere.sock"
# A bundle with one blob of the layout changed and repacked, so that SHA256SUMS matches:
# what someone who rewrote the bundle would produce. The installer must still refuse it.
"$BUNDLE" extract "$WORK/tree" >/dev/null
blob=$(python3 -c 'import json,sys; i=[i for i in json.load(open(sys.argv[1]))["images"] if i["ref"]=="registry.k8s.io/pause:3.10"][0]; print(i["arches"]["amd64"]["blobs"][-1]["digest"][7:])' "$WORK/tree/images/images.json")
printf 'altered' >>"$WORK/tree/images/oci/blobs/sha256/$blob"
(cd "$WORK/tree" && rm SHA256SUMS bundle.index)
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q pack --dir "$WORK/tree" -o "$WORK/altered" >/dev/null
expect_failure 3 "images/oci/blobs/sha256/$blob holds content with digest sha256:[0-9a-f]{64}: the bundle was altered after it was built" \
  unshare -n "$WORK/altered/install" images --address "$CONTAINERD_ADDRESS"
[ "$(state)" = "$empty" ] || fail "a refused import left images or content in containerd"
pass "an unreachable runtime and an altered blob are refused; containerd holds nothing"

# 2. A dry run lists what would be imported and changes nothing.
images --dry-run --json >"$WORK/dry.json" || fail "the dry run failed"
python3 - "$WORK/dry.json" <<'EOF' || fail "the dry run's report is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "dry-run" and r["arch"] == "amd64" and r["runtime"] == "containerd", r
assert len(r["images"]) == 12 and all(i["action"] == "import" for i in r["images"]), r["images"]
EOF
[ "$(state)" = "$empty" ] || fail "the dry run changed containerd"
pass "a dry run lists 12 images to import and changes nothing"

# 3. The import: every image under its reference at the lock's amd64 digest.
images >"$WORK/import.out" 2>"$WORK/import.err" || { cat "$WORK/import.err"; fail "install images failed"; }
grep -q "^imported 12 images (.* of blobs) into containerd (namespace k8s.io); all 12 images for amd64 are there at their locked digests$" \
  "$WORK/import.out" || { cat "$WORK/import.out"; fail "no summary"; }
python3 - "$WORK/out/kubexm.lock" <(containerd_images) <<'EOF' || fail "containerd's images are not the lock's"
import json, sys
lock, listing = sys.argv[1:]
have = dict(line.split() for line in open(listing) if not line.startswith("sha256:"))
for image in json.load(open(lock))["images"]:
    assert have.get(image["ref"]) == image["arches"]["amd64"]["digest"], (image["ref"], have.get(image["ref"]))
print(len(have), "images")
EOF
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io run --rm registry.k8s.io/pause:3.10 kubexm-test \
  /bin/busybox sh -c 'echo "ran on $(uname -m)"' >"$WORK/run.out" 2>&1 || { cat "$WORK/run.out"; fail "no container ran"; }
grep -q "^ran on x86_64$" "$WORK/run.out" || { cat "$WORK/run.out"; fail "the container printed the wrong thing"; }
pass "12 images are in containerd at the lock's amd64 digests, and a container runs from one"

# 4. Again: nothing to import, nothing changed.
before=$(state)
images >"$WORK/again.out" 2>&1 || { cat "$WORK/again.out"; fail "the second run failed"; }
grep -q "^nothing to import: all 12 images for amd64 are in containerd (namespace k8s.io) at their locked digests; nothing changed$" \
  "$WORK/again.out" || { cat "$WORK/again.out"; fail "the second run did not say it had nothing to do"; }
[ "$before" = "$(state)" ] || fail "the second run changed containerd"
pass "a second run imports nothing and says so"

# 4b. An image the host pulled from a registry (named by its index, not its amd64 manifest)
# is the locked image too: it is left alone.
start_image_registry
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images pull --plain-http --platform linux/amd64 \
  "$REGISTRY/registry.k8s.io/coredns/coredns:v1.11.3" >/dev/null
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images tag --force "$REGISTRY/registry.k8s.io/coredns/coredns:v1.11.3" \
  registry.k8s.io/coredns/coredns:v1.11.3 >/dev/null
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images rm "$REGISTRY/registry.k8s.io/coredns/coredns:v1.11.3" >/dev/null
stop_registry
index=$(python3 -c 'import json,sys; print([i for i in json.load(open(sys.argv[1]))["images"] if i["ref"]=="registry.k8s.io/coredns/coredns:v1.11.3"][0]["digest"])' "$WORK/out/kubexm.lock")
containerd_images | grep -x "registry.k8s.io/coredns/coredns:v1.11.3 $index" >/dev/null || fail "the pulled image is not named by its index"
images >"$WORK/pulled.out" 2>&1 || { cat "$WORK/pulled.out"; fail "the run after a pull failed"; }
grep -q "^nothing to import: all 12 images" "$WORK/pulled.out" || { cat "$WORK/pulled.out"; fail "an image pulled at its locked index was imported again"; }
pass "an image pulled at its locked index digest counts as present"

# 5. An image removed from containerd, and one whose reference now names another image, are
# the only ones imported again.
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images rm quay.io/calico/node:v3.30.5 >/dev/null
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images tag --force registry.k8s.io/etcd:3.5.16-0 \
  registry.k8s.io/pause:3.10 >/dev/null
images --json >"$WORK/one.json" || fail "the re-import failed"
python3 - "$WORK/one.json" <<'EOF' || fail "the re-import did not import just those two"
import json, sys
r = json.load(open(sys.argv[1]))
todo = sorted(i["ref"] for i in r["images"] if i["action"] == "import")
assert r["outcome"] == "imported" and todo == ["quay.io/calico/node:v3.30.5", "registry.k8s.io/pause:3.10"], r
EOF
want=$(python3 -c 'import json,sys; print([i for i in json.load(open(sys.argv[1]))["images"] if i["ref"]=="registry.k8s.io/pause:3.10"][0]["arches"]["amd64"]["digest"])' "$WORK/out/kubexm.lock")
containerd_images | grep -x "registry.k8s.io/pause:3.10 $want" >/dev/null || fail "pause is not back at its locked digest"
pass "a removed image and a reference moved to another image are imported again, alone"

# 6. A bundle without this host's arch says so.
{ grep -v '^arches:' "$WORK/site.yaml"; echo "arches: [arm64]"; } >"$WORK/arm64.yaml"
start_image_registry
start_mirror "$MIRROR_ROOT"
"$BUILDER" -q build -f "$WORK/arm64.yaml" -o "$WORK/out-arm64" --cache "$WORK/cache" "${MIRRORS[@]}" \
  "${REGISTRY_OPTIONS[@]}" >/dev/null 2>&1 || fail "the arm64 build failed"
expect_failure 1 "the bundle carries no images for amd64 \(this host's arch\): build it with arches: \[amd64\]" \
  unshare -n "$WORK/out-arm64/install" images --address "$CONTAINERD_ADDRESS"
pass "a bundle without this host's arch is refused"
