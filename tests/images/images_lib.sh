# Helpers for the image tests; sourced after tests/lib.sh.
# shellcheck source=tests/images/registry.sh
. "$KUBEXM_SOURCE/tests/images/registry.sh"

# start_image_registry: the fixture's images in a fresh local registry; sets REGISTRY and
# REGISTRY_OPTIONS (the builder options that read every upstream registry from it).
start_image_registry() {
  ensure_images
  start_registry "$WORK/registry"
  push_images >/dev/null
  REGISTRY_OPTIONS=(--insecure-registry "$REGISTRY")
  local upstream
  for upstream in registry.k8s.io quay.io docker.io ghcr.io; do
    REGISTRY_OPTIONS+=(--registry-mirror "$upstream=$REGISTRY/$upstream")
  done
}

# images_manifest OUT [extra yaml]: the demo's binaries for a kubeadm cluster with calico and
# an internal haproxy (the images of kubeadm/stacked-etcd/several-masters/internal-haproxy), on amd64 and arm64.
images_manifest() {
  local out=$1
  shift
  binaries_manifest "$out" "cluster:
  type: kubeadm
  etcd: kubeadm
  cni: calico
  loadbalancer: {enabled: true, mode: internal, type: haproxy}" "$@"
}
