#!/usr/bin/env bash
# Builds the bundles the role tests install on booted hosts ($KUBEXM_E2E/kh, /kn and /kx),
# from the local mirrors and registry, as a release engineer would: a site of three etcd
# hosts (kubexm etcd), two external load balancers, three masters and two workers on
# 10.77.0.0/24, all Debian 12 amd64; kh: a kubeadm cluster with keepalived + haproxy, kn: the
# same with keepalived + nginx, kx: a kubexm cluster (its control plane under systemd) with
# keepalived + haproxy; and $KUBEXM_E2E/prepare, for masters and workers without a site.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory the bundles go to}"

start_package_mirrors
start_image_registry
for lb in kh kn kx; do
  cluster=$([ $lb = kx ] && echo kubexm || echo kubeadm)
  cat >"$WORK/site-$lb.yaml" <<SITE
name: e2e-$lb
kubernetes: {type: $cluster, version: 1.32.10}
etcd: {type: kubexm}
network: {plugin: calico}
loadbalancer: {enabled: true, mode: external, type: kubexm-${lb/kx/kh}, vip: 10.77.0.100, interface: eth0, port: 6443}
hosts:
  - {name: lb1, address: 10.77.0.5/24, os: debian-12, roles: [lb]}
  - {name: lb2, address: 10.77.0.6/24, os: debian-12, roles: [lb]}
  - {name: etcd1, address: 10.77.0.31/24, os: debian-12, roles: [etcd]}
  - {name: etcd2, address: 10.77.0.32/24, os: debian-12, roles: [etcd]}
  - {name: etcd3, address: 10.77.0.33/24, os: debian-12, roles: [etcd]}
  - {name: master1, address: 10.77.0.11/24, os: debian-12, roles: [master]}
  - {name: master2, address: 10.77.0.12/24, os: debian-12, roles: [master]}
  - {name: master3, address: 10.77.0.13/24, os: debian-12, roles: [master]}
  - {name: worker1, address: 10.77.0.21/24, os: debian-12, roles: [worker]}
  - {name: worker2, address: 10.77.0.22/24, os: debian-12, roles: [worker]}
SITE
  {
    printf 'name: e2e-%s\nversion: 1.0.0\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\n' "$lb"
    printf 'roles: [master, worker, etcd, lb]\nsite: site-%s.yaml\n' "$lb"
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
