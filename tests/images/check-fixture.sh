#!/usr/bin/env bash
# Checks the container-image fixture end to end: builds it (or reuses the cached one), pushes
# it to a local registry and reads it back the way the images work will: every reference
# resolves to the fixture's index, each index lists the expected arches, each manifest's
# config and busybox are of its arch, and layers are shared across images.
#
# Usage: tests/images/check-fixture.sh   (KUBEXM_SOURCE defaults to this checkout)
set -euo pipefail

KUBEXM_SOURCE=${KUBEXM_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
export KUBEXM_SOURCE
# shellcheck source=tests/images/registry.sh
. "$KUBEXM_SOURCE/tests/images/registry.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubexm-images-XXXXXX")
trap 'stop_registry; rm -rf "$WORK"' EXIT

PASSED=0
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
pass() {
  PASSED=$((PASSED + 1))
  echo "ok: $*"
}

inspect() {
  skopeo inspect --tls-verify=false "$@" </dev/null
}

# elf_machine FILE: the ELF e_machine field (62 x86-64, 183 AArch64).
elf_machine() {
  od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '
}

ensure_images
pass "fixture at $IMAGES_ROOT"
start_registry "$WORK/registry"
pass "registry at $REGISTRY"
push_images
pass "pushed $(image_refs | wc -l) images with their digests preserved"

declare -A base_layer machine=([amd64]=62 [arm64]=183)
declare -A layers_of=([amd64]="" [arm64]="")
declare -A manifests_of=([amd64]=0 [arm64]=0)
per_image_blobs=0

while read -r ref; do
  repo=$REGISTRY/${ref%:*}
  # Digests over the raw bytes: $(...) would drop a trailing newline.
  inspect --raw "docker://$REGISTRY/$ref" >"$WORK/index.json"
  got=sha256:$(sha256sum <"$WORK/index.json" | cut -d' ' -f1)
  index=$(cat "$WORK/index.json")
  [ "$got" = "$(image_index_digest "$ref")" ] || fail "$ref resolves to $got"
  [ "$(jq -r .mediaType <<<"$index")" = application/vnd.oci.image.index.v1+json ] ||
    fail "$ref is not an image index"

  want="linux/amd64 linux/arm64"
  [ "$ref" != docker.io/library/amd64-only:1.0 ] || want="linux/amd64"
  platforms=$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$index")
  [ "$platforms" = "$want" ] || fail "$ref lists '$platforms', expected '$want'"
  pass "$ref resolves, index lists $platforms"

  per_image_blobs=$((per_image_blobs + 1))
  while read -r arch digest; do
    inspect --raw "docker://$repo@$digest" >"$WORK/manifest.json"
    manifest=$(cat "$WORK/manifest.json")
    [ "sha256:$(sha256sum <"$WORK/manifest.json" | cut -d' ' -f1)" = "$digest" ] ||
      fail "$repo@$digest serves another manifest"
    config=$(inspect --config --raw "docker://$repo@$digest")
    [ "$(jq -r .architecture <<<"$config")" = "$arch" ] ||
      fail "$ref linux/$arch has config architecture $(jq -r .architecture <<<"$config")"
    [ "$(jq -r .os <<<"$config")" = linux ] || fail "$ref linux/$arch has config os $(jq -r .os <<<"$config")"
    [ "$(jq -r '.config.Labels["io.kubexm.test.image"]' <<<"$config")" = "$ref" ] ||
      fail "$ref linux/$arch is labelled for another image"
    [ "$(jq '.layers | length' <<<"$manifest")" = 2 ] || fail "$ref linux/$arch does not have 2 layers"
    base=$(jq -r '.layers[0].digest' <<<"$manifest")
    if [ -z "${base_layer[$arch]:-}" ]; then
      base_layer[$arch]=$base
      curl -sf "http://$REGISTRY/v2/${ref%:*}/blobs/$base" | tar -xzO bin/busybox >"$WORK/busybox-$arch" ||
        fail "could not read bin/busybox from the $arch base layer $base"
      [ "$(elf_machine "$WORK/busybox-$arch")" = "${machine[$arch]}" ] ||
        fail "the $arch base layer holds a busybox for ELF machine $(elf_machine "$WORK/busybox-$arch")"
      pass "the $arch base layer holds the $arch busybox"
    fi
    layers_of[$arch]+=" $(jq -r '.layers[].digest' <<<"$manifest" | tr '\n' ' ')"
    manifests_of[$arch]=$((manifests_of[$arch] + 1))
    per_image_blobs=$((per_image_blobs + 2 + $(jq '.layers | length' <<<"$manifest")))
  done < <(jq -r '.manifests[] | .platform.architecture + " " + .digest' <<<"$index")
  pass "$ref: each manifest's config is of its arch"
done < <(image_refs)

for arch in amd64 arm64; do
  distinct=$(tr ' ' '\n' <<<"${layers_of[$arch]}" | grep . | sort -u | wc -l)
  bases=$(tr ' ' '\n' <<<"${layers_of[$arch]}" | grep -cx "${base_layer[$arch]}")
  n=${manifests_of[$arch]}
  [ "$bases" = "$n" ] || fail "the $arch base layer is in $bases of $n manifests"
  [ "$distinct" = $((n + 1)) ] || fail "$n $arch manifests have $distinct distinct layers, expected $((n + 1))"
  pass "$n $arch manifests share one base layer ($distinct distinct layers)"
done

shared=$WORK/shared
while read -r ref; do
  skopeo copy -q --multi-arch=all --src-tls-verify=false "docker://$REGISTRY/$ref" "oci:$shared:$ref" \
    </dev/null >/dev/null || fail "could not copy $ref into a shared layout"
done < <(image_refs)
stored=$(find "$shared/blobs/sha256" -type f | wc -l)
# Each arch's base layer is stored once instead of once per image.
expected=$((per_image_blobs - (manifests_of[amd64] - 1) - (manifests_of[arm64] - 1)))
[ "$stored" -lt "$per_image_blobs" ] || fail "the shared layout stores $stored blobs, the images $per_image_blobs"
[ "$stored" = "$expected" ] || fail "the shared layout stores $stored blobs, expected $expected"
for ref in $(image_refs); do
  got=sha256:$(skopeo inspect --raw "oci:$shared:$ref" </dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$(image_index_digest "$ref")" ] || fail "the shared layout has $ref as $got"
done
pass "a shared layout stores $stored blobs for images of $per_image_blobs, digests unchanged"

pid=$REGISTRY_PID
stop_registry
! kill -0 "$pid" 2>/dev/null || fail "the registry still runs"
pass "registry stopped"
echo "$PASSED passed"
