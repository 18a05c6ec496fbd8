#!/usr/bin/env bash
# The images of a Kubernetes 1.32 kubeadm cluster with calico and an internal haproxy, for
# amd64 and arm64, from a real docker-registry: derived from the manifest's cluster: section
# with the right names and tags, pinned in the lock by index and per-arch manifest digests,
# all in one OCI layout that stores every shared layer once and that skopeo reads back per
# arch. Building again from the lock copies by digest only: a tag moved in the registry
# since changes nothing, and with the registry gone a warm cache builds the same bundle.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"

ensure_mirror
start_mirror "$MIRROR_ROOT"
start_image_registry
images_manifest "$WORK/site.yaml"
build() {
  SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" --cache "$WORK/cache" "${MIRRORS[@]}" \
    "${REGISTRY_OPTIONS[@]}" "$@" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed: $*"; }
}
build -o "$WORK/out"
LOCK="$WORK/out/kubexm.lock"

# 1. The lock names exactly the images of this cluster, with the registry's digests.
expected="docker.io/library/haproxy:3.0.5-alpine
quay.io/calico/cni:v3.30.5
quay.io/calico/kube-controllers:v3.30.5
quay.io/calico/node:v3.30.5
registry.k8s.io/coredns/coredns:v1.11.3
registry.k8s.io/dns/k8s-dns-node-cache:1.24.0
registry.k8s.io/etcd:3.5.16-0
registry.k8s.io/kube-apiserver:v1.32.10
registry.k8s.io/kube-controller-manager:v1.32.10
registry.k8s.io/kube-proxy:v1.32.10
registry.k8s.io/kube-scheduler:v1.32.10
registry.k8s.io/pause:3.10"
locked=$(python3 -c 'import json,sys; print("\n".join(i["ref"] for i in json.load(open(sys.argv[1]))["images"]))' "$LOCK")
[ "$locked" = "$expected" ] || fail "the lock's images are not the cluster's: $locked"
python3 - "$LOCK" "$IMAGES_ROOT/images.txt" "$REGISTRY" <<'EOF' || fail "the lock's digests are not the registry's"
import hashlib, json, subprocess, sys
lock, listing, registry = sys.argv[1:]
fixture = dict(line.split()[:2] for line in open(listing))
for image in json.load(open(lock))["images"]:
    assert image["digest"] == fixture[image["ref"]], (image["ref"], image["digest"])
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry}/{image['ref']}"],
                         check=True, capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == image["digest"]
    entries = {m["platform"]["architecture"]: m["digest"] for m in json.loads(raw)["manifests"]}
    assert set(image["arches"]) == {"amd64", "arm64"}, image
    for arch, manifest in image["arches"].items():
        assert manifest["digest"] == entries[arch], (image["ref"], arch)
    assert image["missing_arches"] == []
EOF
pass "the lock holds the 12 images of a kubeadm + calico + internal haproxy cluster, by index and per-arch digest"

# 2. One layout: every image under its reference, each arch readable by skopeo, each blob once.
"$KUBEXM_BIN/install" --bundle "$WORK/out/install" extract "$WORK/tree" >/dev/null
LAYOUT="$WORK/tree/images/oci"
[ -f "$LAYOUT/oci-layout" ] && [ -f "$LAYOUT/index.json" ] || fail "no OCI layout in the bundle"
python3 - "$LAYOUT" "$LOCK" <<'EOF' || fail "the layout is not what the lock says"
import hashlib, json, os, sys
layout, lock = sys.argv[1:]
blobs = os.path.join(layout, "blobs", "sha256")
for name in os.listdir(blobs):
    data = open(os.path.join(blobs, name), "rb").read()
    assert hashlib.sha256(data).hexdigest() == name, name
index = json.load(open(os.path.join(layout, "index.json")))
names = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"])
locked = json.load(open(lock))["images"]
assert names == [i["ref"] for i in locked], names
EOF
for ref in registry.k8s.io/pause:3.10 quay.io/calico/node:v3.30.5 docker.io/library/haproxy:3.0.5-alpine; do
  for arch in amd64 arm64; do
    rm -rf "$WORK/copy"
    skopeo --override-arch "$arch" copy -q "oci:$LAYOUT:$ref" "dir:$WORK/copy" || fail "skopeo cannot read $ref for $arch"
    got="$(skopeo --override-arch "$arch" inspect --format '{{.Architecture}}' "oci:$LAYOUT:$ref") sha256:$(sha256sum <"$WORK/copy/manifest.json" | cut -c1-64)"
    want=$(python3 -c 'import json,sys; i=[i for i in json.load(open(sys.argv[1]))["images"] if i["ref"]==sys.argv[2]][0]; print(sys.argv[3], i["arches"][sys.argv[3]]["digest"])' "$LOCK" "$ref" "$arch")
    [ "$got" = "$want" ] || fail "skopeo reads $ref for $arch as '$got', the lock says '$want'"
  done
done
# Every image of an arch shares the fixture's base layer: the layout holds it once per arch.
layout_blobs=$(find "$LAYOUT/blobs/sha256" -type f | wc -l)
referenced=$(python3 - "$LAYOUT" <<'EOF'
import json, os, sys
layout = sys.argv[1]
def blob(d): return json.load(open(os.path.join(layout, "blobs", "sha256", d.split(":")[1])))
count = 0
for top in json.load(open(os.path.join(layout, "index.json")))["manifests"]:
    for m in blob(top["digest"])["manifests"]:
        count += 2 + len(blob(m["digest"])["layers"])
print(count)
EOF
)
[ "$layout_blobs" -lt "$referenced" ] || fail "the layout stores $layout_blobs blobs for $referenced references: nothing is shared"
pass "one OCI layout holds all 12 images for amd64 and arm64: $layout_blobs blobs for $referenced per-image references"

# 3. Rebuilt from the lock with a cold cache after the pause tag was moved in the registry:
# the bundle carries the locked image, fetched by digest.
skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
  "docker://$REGISTRY/registry.k8s.io/etcd:3.5.16-0" "docker://$REGISTRY/registry.k8s.io/pause:3.10"
lines_before=$(wc -l <"$WORK/registry/registry.log")
rm -rf "$WORK/cache/images"
build -o "$WORK/again" --lock "$LOCK"
tail -n +"$((lines_before + 1))" "$WORK/registry/registry.log" | grep -o '"GET /v2/[^ ]*/manifests/[^ ]*' >"$WORK/requests" || true
[ -s "$WORK/requests" ] || fail "the rebuild asked the registry for no manifests"
if grep -v '/manifests/sha256:' "$WORK/requests"; then
  fail "building from the lock asked for a manifest by tag"
fi
"$KUBEXM_BIN/install" --bundle "$WORK/again/install" extract "$WORK/tree-again" >/dev/null
cmp -s "$WORK/tree/kubexm.lock" "$WORK/tree-again/kubexm.lock" || fail "building from the lock changed it"
diff -r "$WORK/tree/images" "$WORK/tree-again/images" >/dev/null || fail "the rebuilt bundle's images differ"
pass "building from the lock fetches by digest only ($(wc -l <"$WORK/requests") manifest requests): a moved tag changes nothing"

# 4. With the registry down, a warm cache builds the same bundle from the lock.
stop_registry
build -o "$WORK/offline" --lock "$LOCK"
cmp -s "$WORK/again/kubexm-dist-demo-1.0.0.tar.zst" "$WORK/offline/kubexm-dist-demo-1.0.0.tar.zst" ||
  fail "the offline rebuild is not byte-identical"
pass "with the registry down the lock and the cache build a byte-identical bundle"
