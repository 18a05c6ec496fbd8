#!/usr/bin/env bash
# Builds the bundles the role tests install on booted hosts ($KUBEXM_E2E/kh, /kn and /kx),
# from the local mirrors and registry, as a release engineer would: a site of three etcd
# hosts (kubexm etcd), two external load balancers, three masters and two workers on
# 10.77.0.0/24, all Debian 12 amd64; kh: a kubeadm cluster with keepalived + haproxy, kn: the
# same with keepalived + nginx, kx: a kubexm cluster (its control plane under systemd) with
# keepalived + haproxy; $KUBEXM_E2E/kx-other, the kx site with a PKI of its own; and
# $KUBEXM_E2E/prepare, for masters and workers without a site.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/site.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory the bundles go to}"

start_package_mirrors
start_image_registry
for lb in kh kn kx; do
  e2e_site "$lb" "$WORK/site-$lb.yaml"
  {
    e2e_manifest "$lb" "site-$lb.yaml"
    cat "$MIRROR_ROOT/checksums.yaml"
  } >"$WORK/manifest-$lb.yaml"
  rm -rf "$KUBEXM_E2E/$lb"
  SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/manifest-$lb.yaml" -o "$KUBEXM_E2E/$lb" --cache "$WORK/cache" \
    --key-algorithm ecdsa "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" >"$WORK/build-$lb.out" 2>&1 ||
    { cat "$WORK/build-$lb.out"; fail "building the $lb bundle failed"; }
  # Only the self-extracting installer travels: the host finds the bundle attached to it.
  # (tools/bench/role.sh keeps the archive, to extract it by hand.)
  [ -n "${KUBEXM_E2E_KEEP_ARCHIVE:-}" ] || rm -f "$KUBEXM_E2E/$lb"/kubexm-dist-*.tar.zst
  pass "the $lb bundle: $(du -h "$KUBEXM_E2E/$lb/install" | cut -f1), $("$INSTALLER" --bundle "$KUBEXM_E2E/$lb/install" info --json |
    python3 -c 'import json,sys; i=json.load(sys.stdin); print(len(i["site_nodes"]), "nodes,", len(i["bundle"]["images"]), "images")')"
done

# The kx site built again into a directory of its own, so with a PKI of its own: a node
# installed from it does not belong to the cluster the kx bundle made.
rm -rf "$KUBEXM_E2E/kx-other"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/manifest-kx.yaml" -o "$KUBEXM_E2E/kx-other" --cache "$WORK/cache" \
  --key-algorithm ecdsa "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" >"$WORK/build-kx-other.out" 2>&1 ||
  { cat "$WORK/build-kx-other.out"; fail "building the kx bundle with another PKI failed"; }
rm -f "$KUBEXM_E2E/kx-other"/kubexm-dist-*.tar.zst
for ca in "$KUBEXM_E2E"/kx{,-other}/e2e-kx.site/pki/ca.crt; do
  [ -s "$ca" ] || fail "$ca is missing"
done
! cmp -s "$KUBEXM_E2E/kx/e2e-kx.site/pki/ca.crt" "$KUBEXM_E2E/kx-other/e2e-kx.site/pki/ca.crt" ||
  fail "the kx bundle built again has the same cluster CA"
pass "the kx site again, with a cluster CA of its own (kx-other)"

# A bundle without a site: it prepares masters' and workers' hosts (a default runtime
# configuration, the kubelet installed), which join a cluster only with a site's bundle.
{
  printf 'name: e2e-prepare\nversion: 1.0.0\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\n'
  printf 'roles: [master, worker]\ncluster: {type: kubeadm, etcd: kubeadm, cni: calico}\n'
  cat "$MIRROR_ROOT/checksums.yaml"
} >"$WORK/manifest-prepare.yaml"
rm -rf "$KUBEXM_E2E/prepare"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/manifest-prepare.yaml" -o "$KUBEXM_E2E/prepare" --cache "$WORK/cache" \
  "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" >"$WORK/build-prepare.out" 2>&1 ||
  { cat "$WORK/build-prepare.out"; fail "building the bundle without a site failed"; }
rm -f "$KUBEXM_E2E/prepare"/kubexm-dist-*.tar.zst
"$INSTALLER" --bundle "$KUBEXM_E2E/prepare/install" list | grep ' prepare/kubernetes/etc/containerd/config.toml$' >/dev/null ||
  fail "the bundle without a site carries no prepared configuration (prepare/kubernetes/)"
pass "the bundle without a site: $(du -h "$KUBEXM_E2E/prepare/install" | cut -f1), with prepare/kubernetes/"
