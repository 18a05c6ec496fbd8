#!/usr/bin/env bash
# Bad image input, against a real docker-registry: each is an error that says what was wrong
# and where, exits non-zero and writes no lock. A manifest's cluster: and images: mistakes;
# a tag that does not exist; an image without arm64 (strict fails, warn carries amd64 only);
# an index whose arm64 entry is an amd64 image; a blob corrupted in the registry; a registry
# that is down; TLS verification unless --insecure-registry; credentials from --authfile.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"

ensure_mirror
start_mirror "$MIRROR_ROOT"
start_image_registry
resolve() {
  "$BUILDER" resolve -f "$1" -o "$WORK/site.lock" --cache "$WORK/cache" "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" "${@:2}"
}
no_lock() {
  [ ! -e "$WORK/site.lock" ] || fail "a failed resolve wrote a lock"
}

# 1. Manifest mistakes, each with its line, all in one run (exit 2).
binaries_manifest "$WORK/bad.yaml" "cluster:
  type: kubexm
  etcd: kubeadm
  cni: weave
  loadbalancer: {enabled: true, mode: internal}
images: [busybox, docker.io/Library/x:1]"
expect_failure 2 "cluster: etcd: kubeadm needs type: kubeadm" resolve "$WORK/bad.yaml"
for pattern in "line [0-9]+: cni: 'weave' is not calico, flannel, cilium, kube-router or none" \
  "line [0-9]+: 'type' is missing \(cluster: loadbalancer: internal needs type: haproxy or nginx" \
  "'busybox' has no tag: write busybox:TAG" \
  "'Library' is not a repository path component"; do
  grep -qE "$pattern" "$WORK/stderr" || { cat "$WORK/stderr"; fail "not reported: /$pattern/"; }
done
no_lock
pass "cluster: and images: mistakes are reported together, with their lines"

# 2. A tag the registry does not have.
binaries_manifest "$WORK/missing.yaml" "images: [registry.k8s.io/pause:9.99]"
expect_failure 1 "resolving registry.k8s.io/pause:9.99 \(read from $REGISTRY/registry.k8s.io/pause:9.99\): .*manifest unknown" \
  resolve "$WORK/missing.yaml"
no_lock
pass "a missing tag names the image and where it was looked for"

# 3. An image without arm64: an error by default; with warn, carried for amd64 only.
binaries_manifest "$WORK/amd64-only.yaml" "images: [docker.io/library/amd64-only:1.0]"
expect_failure 1 "docker.io/library/amd64-only:1.0 has no linux/arm64 image \(it has linux/amd64\): build without arch arm64, or pass --images-policy=warn" \
  resolve "$WORK/amd64-only.yaml"
no_lock
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/amd64-only.yaml" -o "$WORK/warn" --cache "$WORK/cache" \
  "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" --images-policy=warn >/dev/null 2>"$WORK/warn.err" ||
  { cat "$WORK/warn.err"; fail "the warn build failed"; }
grep -q "warning: docker.io/library/amd64-only:1.0 has no linux/arm64 image (it has linux/amd64): the bundle carries it for the other arches only" \
  "$WORK/warn.err" || { cat "$WORK/warn.err"; fail "no warning"; }
python3 - "$WORK/warn/kubexm.lock" <<'EOF' || fail "the lock does not record the missing arch"
import json, sys
image = json.load(open(sys.argv[1]))["images"][0]
assert image["missing_arches"] == ["arm64"] and list(image["arches"]) == ["amd64"], image
EOF
"$KUBEXM_BIN/install" --bundle "$WORK/warn/install" extract "$WORK/warn-tree" >/dev/null
grep -A3 "ref: docker.io/library/amd64-only:1.0" "$WORK/warn-tree/bundle.yaml" | grep -q "amd64:" || fail "bundle.yaml lacks the amd64 image"
! grep -A3 "ref: docker.io/library/amd64-only:1.0" "$WORK/warn-tree/bundle.yaml" | grep -q "arm64:" || fail "bundle.yaml claims arm64"
{ grep -v '^arches:' "$WORK/amd64-only.yaml"; echo "arches: [arm64]"; } >"$WORK/arm64-only.yaml"
expect_failure 1 "docker.io/library/amd64-only:1.0 has none of the bundle's arches \(arm64\); it has linux/amd64" \
  resolve "$WORK/arm64-only.yaml" --images-policy=warn
no_lock
pass "an image without arm64 fails by default; --images-policy=warn carries it for amd64 and records the gap, but not for none"

# 4. An index that lists the amd64 image as arm64 too: the config gives it away.
amd64=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/registry.k8s.io/pause:3.10" |
  python3 -c 'import json,sys; print([m for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"]=="amd64"][0]["digest"])')
skopeo copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
  "docker://$REGISTRY/registry.k8s.io/pause@$amd64" "docker://$REGISTRY/docker.io/library/mislabeled:amd64"
skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/registry.k8s.io/pause:3.10" | python3 -c '
import json, sys
index = json.load(sys.stdin)
amd64 = [m for m in index["manifests"] if m["platform"]["architecture"] == "amd64"][0]
index["manifests"] = [amd64, dict(amd64, platform={"architecture": "arm64", "os": "linux"})]
sys.stdout.write(json.dumps(index))' >"$WORK/mislabeled.json"
curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.index.v1+json" --data-binary "@$WORK/mislabeled.json" \
  "http://$REGISTRY/v2/docker.io/library/mislabeled/manifests/1.0" >/dev/null || fail "could not push the mislabeled index"
binaries_manifest "$WORK/mislabeled.yaml" "images: [docker.io/library/mislabeled:1.0]"
expect_failure 3 "docker.io/library/mislabeled:1.0 \(arm64\): the index lists manifest $amd64 as linux/arm64, but its config says linux/amd64 \(--images-policy=warn accepts it\)" \
  resolve "$WORK/mislabeled.yaml"
no_lock
pass "an index entry whose config is of another arch is reported"

# 5. A layer corrupted in the registry's storage: the copy by digest fails, nothing is kept.
layer=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/registry.k8s.io/kube-proxy@$(
  skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/registry.k8s.io/kube-proxy:v1.32.10" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["digest"][7:])')
data="$WORK/registry/storage/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data"
[ -f "$data" ] || fail "no blob file $data"
printf 'corrupted' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
binaries_manifest "$WORK/corrupt.yaml" "images: [registry.k8s.io/kube-proxy:v1.32.10]"
rm -rf "$WORK/cache/images"
expect_failure 1 "fetching registry.k8s.io/kube-proxy:v1.32.10 for (amd64|arm64) .*(digest|Digest)" resolve "$WORK/corrupt.yaml"
no_lock
[ -z "$(find "$WORK/cache/images" -name '*.partial-*' 2>/dev/null)" ] || fail "a failed copy left a partial directory"
pass "a corrupted layer in the registry fails the fetch and leaves nothing behind"

# 6. TLS: a registry not listed as insecure is reached with TLS verification.
binaries_manifest "$WORK/one.yaml" "images: [registry.k8s.io/pause:3.10]"
mirrors=()
for m in registry.k8s.io quay.io docker.io ghcr.io; do mirrors+=(--registry-mirror "$m=$REGISTRY/$m"); done
expect_failure 1 "resolving registry.k8s.io/pause:3.10 \(read from $REGISTRY/registry.k8s.io/pause:3.10\): .*(HTTP response to HTTPS client|https)" \
  "$BUILDER" resolve -f "$WORK/one.yaml" -o "$WORK/site.lock" --cache "$WORK/cache" "${MIRRORS[@]}" "${mirrors[@]}"
no_lock
pass "without --insecure-registry the registry is spoken to over verified TLS"

# 7. The registry down.
stop_registry
expect_failure 1 "resolving registry.k8s.io/pause:3.10 \(read from $REGISTRY/registry.k8s.io/pause:3.10\): .*connection refused" \
  resolve "$WORK/one.yaml"
no_lock
pass "a registry that is down is named with the image"

# 8. A registry that wants credentials: refused without them, read with --authfile.
python3 -c 'import crypt; print("kubexm:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' \
  2>/dev/null >"$WORK/htpasswd"
start_registry "$WORK/auth-registry" "$WORK/htpasswd"
skopeo copy -q --all --preserve-digests --dest-tls-verify=false --dest-creds kubexm:s3cret \
  "oci:$IMAGES_ROOT/layout:registry.k8s.io/pause:3.10" "docker://$REGISTRY/registry.k8s.io/pause:3.10" ||
  fail "could not push to the registry with credentials"
REGISTRY_OPTIONS=(--insecure-registry "$REGISTRY")
for m in registry.k8s.io quay.io docker.io ghcr.io; do REGISTRY_OPTIONS+=(--registry-mirror "$m=$REGISTRY/$m"); done
expect_failure 1 "resolving registry.k8s.io/pause:3.10 .*(unauthorized|authentication required)" resolve "$WORK/one.yaml"
no_lock
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY" "$(printf kubexm:s3cret | base64)" >"$WORK/auth.json"
resolve "$WORK/one.yaml" --authfile "$WORK/auth.json" >/dev/null 2>"$WORK/auth.err" || { cat "$WORK/auth.err"; fail "--authfile was not used"; }
[ -s "$WORK/site.lock" ] || fail "no lock"
pass "a registry with credentials refuses an anonymous resolve and accepts --authfile"
