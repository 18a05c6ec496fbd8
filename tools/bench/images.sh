#!/usr/bin/env bash
# Benchmarks the bundle's container images against skopeo and ctr doing the same work, on
# the image fixture (tools/make-images.py: the 12 images of a kubeadm + calico + internal
# haproxy cluster, amd64 and arm64, every image of an arch on one busybox base layer):
#   bytes:  images/oci of the bundle (one layout, each blob once) against the sum of one
#           `skopeo copy docker://... docker-archive:` tar per image and arch (which holds
#           layers uncompressed), and of one oci-archive tar each (layers as published)
#   import: `install images` (streams the amd64 images out of the bundle into containerd)
#           against `ctr images import` of the per-image amd64 docker-archive tars, each
#           into a fresh containerd with no network
# The median of --runs is reported for the import.
#
#   tools/bench/images.sh [--runs 5] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

source tools/bench/common.sh
source tests/images/images_lib.sh
source tests/images/containerd.sh

ensure_mirror
start_mirror "$MIRROR_ROOT"
start_image_registry
# Only kubectl as binaries: the import reads the bundle up to its images, and this measures
# the images, not the decompression of the binaries before them.
images_manifest "$WORK/site.yaml" "components: [kubectl]"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$WORK/cache" \
  "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" >/dev/null
"$INSTALLER" --bundle "$WORK/out/install" extract "$WORK/tree" >/dev/null
layout_bytes=$(find "$WORK/tree/images/oci" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

tars_bytes=0
oci_bytes=0
mkdir -p "$WORK/tars" "$WORK/oci"
n=0
while read -r ref; do
  for arch in amd64 arm64; do
    n=$((n + 1))
    tar="$WORK/tars/$arch-$n.tar"
    skopeo --override-arch "$arch" copy -q --src-tls-verify=false "docker://$REGISTRY/$ref" "docker-archive:$tar:$ref"
    tars_bytes=$((tars_bytes + $(stat -c %s "$tar")))
    # The same image with its layers compressed as published: what sharing alone saves.
    skopeo --override-arch "$arch" copy -q --src-tls-verify=false "docker://$REGISTRY/$ref" "oci-archive:$WORK/oci/$n.tar:$ref"
    oci_bytes=$((oci_bytes + $(stat -c %s "$WORK/oci/$n.tar")))
  done
done < <(python3 -c 'import json,sys; print("\n".join(i["ref"] for i in json.load(open(sys.argv[1]))["images"]))' \
  "$WORK/out/kubexm.lock")
stop_registry
stop_mirror

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
kubexm_times=()
ctr_times=()
for run in $(seq "$runs"); do
  start_containerd "$WORK/ctrd-k-$run"
  t0=$(now)
  unshare -n "$WORK/out/install" -q images --address "$CONTAINERD_ADDRESS" >/dev/null 2>&1
  kubexm_times+=("$(echo "$(now) - $t0" | bc)")
  stop_containerd
  start_containerd "$WORK/ctrd-c-$run"
  t0=$(now)
  for tar in "$WORK"/tars/amd64-*.tar; do
    ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images import "$tar" >/dev/null 2>&1
  done
  ctr_times+=("$(echo "$(now) - $t0" | bc)")
  stop_containerd
  rm -rf "$WORK/ctrd-k-$run" "$WORK/ctrd-c-$run"
done
k=$(printf '%s\n' "${kubexm_times[@]}" | median)
c=$(printf '%s\n' "${ctr_times[@]}" | median)

printf 'images: %s references (amd64 + arm64)\n' "$n"
printf 'bytes   kubexm images/oci %10d   skopeo docker-archive tars %10d   ratio %.3fx\n' \
  "$layout_bytes" "$tars_bytes" "$(echo "$layout_bytes / $tars_bytes" | bc -l)"
printf 'bytes   kubexm images/oci %10d   skopeo oci-archive tars    %10d   ratio %.3fx  (layers compressed alike)\n' \
  "$layout_bytes" "$oci_bytes" "$(echo "$layout_bytes / $oci_bytes" | bc -l)"
printf 'import  install images    %8.2f s   ctr images import (per-image tars) %6.2f s   ratio %.2fx  (median of %d)\n' \
  "$k" "$c" "$(echo "$k / $c" | bc -l)" "$runs"
