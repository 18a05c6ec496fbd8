#!/usr/bin/env bash
# The booted-host cluster test with the real Kubernetes programs, for a machine connected to
# the internet: the same ten-host site as tests/e2e/cluster_kubexm.sh (two lb hosts with
# keepalived + haproxy and a VIP, three etcd hosts, three masters, two workers; no network
# but their LAN), the same boot and install steps (tests/e2e/hosts.sh, tests/e2e/site.sh),
# but the bundle is built from the real upstreams (dl.k8s.io, GitHub releases, the image
# registries) instead of the local mirror and its stand-ins.
#
#   sudo tools/e2e-upstream.sh [--site kx|kh|kn] [--wait 20m] [--keep DIR]
#   tools/e2e-upstream.sh --plan [--site ...]     what it would do; needs no network or root
#
# What it needs: root on a Debian 12 machine (or one with the same packages) with cgroup v2,
# 4 CPUs and 16 GiB, and the internet; tools/install-deps.sh installs the rest. The hosts
# run a real kubelet and containerd inside systemd-nspawn, so they get what a kubelet needs
# in a container (all capabilities, /dev/kmsg, a tmpfs for containerd's snapshots, the
# keyring and bpf system calls), as kind gives its nodes.
#
# This machine's test suite cannot run it (no internet here); `--plan` is run by the suite
# (tests/integration/e2e_upstream_plan.sh), and the script is kept shellcheck clean.
set -euo pipefail

site_kind=kx
wait_for=20m
plan=""
keep=""
while [ $# -gt 0 ]; do
  case $1 in
    --site) site_kind=$2; shift 2 ;;
    --wait) wait_for=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --plan) plan=1; shift ;;
    -h | --help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "e2e-upstream: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $site_kind in kx | kh | kn) ;; *) echo "e2e-upstream: --site takes kx, kh or kn" >&2; exit 2 ;; esac

KUBEXM_SOURCE=$(cd "$(dirname "$0")/.." && pwd)
export KUBEXM_SOURCE
export KUBEXM_BIN=${KUBEXM_BIN:-$KUBEXM_SOURCE/build/release/bin}
# shellcheck source=tests/lib.sh
source "$KUBEXM_SOURCE/tests/lib.sh"
# shellcheck source=tests/e2e/hosts.sh
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
# shellcheck source=tests/e2e/site.sh
source "$KUBEXM_SOURCE/tests/e2e/site.sh"

# A kubexm cluster runs kube-apiserver, controller-manager and scheduler as binaries, whose
# digests no public table records (manifests/checksums.yaml): the first resolve records them
# in the lock, which a later build must match.
build_options=(--cache "${KUBEXM_E2E_CACHE:-/var/cache/kubexm-e2e-upstream}")
[ "$site_kind" = kx ] && build_options+=(--allow-unpinned)
HOST_NSPAWN_OPTIONS=(--capability=all --bind=/dev/kmsg --tmpfs=/var/lib/containerd:mode=0711
  --system-call-filter="add_key keyctl bpf" --property=Delegate=yes)

out=${keep:-$WORK/bundle}
build=("$BUILDER" build -f "$WORK/manifest.yaml" -o "$out" "${build_options[@]}")
e2e_site "$site_kind" "$WORK/site.yaml"
# No checksums: the builder pins the default artifacts with manifests/checksums.yaml.
e2e_manifest "$site_kind" site.yaml >"$WORK/manifest.yaml"

if [ -n "$plan" ]; then
  echo "site ($WORK/site.yaml, the one tests/e2e/bundles.sh builds as e2e-$site_kind):"
  sed 's/^/  /' "$WORK/site.yaml"
  echo "manifest ($WORK/manifest.yaml; the default artifacts pinned by manifests/checksums.yaml):"
  sed 's/^/  /' "$WORK/manifest.yaml"
  echo "1. build:   ${build[*]}   (the real upstreams)"
  echo "2. boot:    ${#E2E_HOSTS[@]} hosts (${E2E_HOSTS[*]}) on 10.77.0.0/24, systemd-nspawn ${HOST_NSPAWN_OPTIONS[*]}"
  echo "3. install: every host's install --role=ROLE --wait $wait_for at the same moment"
  echo "4. check:   kubectl on master1 lists the 5 masters and workers, /readyz answers, etcd has 3 healthy members;"
  echo "            install finish deletes the bootstrap token (kubexm) and lists the nodes"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "run it as root: it boots hosts with systemd-nspawn"
bash "$KUBEXM_SOURCE/tools/install-deps.sh"
if [ ! -x "$BUILDER" ]; then
  cmake --preset release -S "$KUBEXM_SOURCE" && cmake --build "$KUBEXM_SOURCE/build/release"
fi
curl -fsSI https://dl.k8s.io/release/stable.txt >/dev/null || fail "dl.k8s.io cannot be reached: this script needs the internet"
modprobe -a overlay br_netfilter || fail "the kernel modules overlay and br_netfilter are needed by the hosts' kubelets"

"${build[@]}" || fail "the build from the real upstreams failed"
rm -f "$out"/kubexm-dist-*.tar.zst
pass "bundle built from the real upstreams: $(du -h "$out/install" | cut -f1)"

lan_up
e2e_boot_all "$out"
pass "${#E2E_HOSTS[@]} hosts booted on a LAN of their own"
started=$SECONDS
e2e_install_all "$wait_for"
pass "every host's install completed, all started at once, in $((SECONDS - started)) s"

admin=(kubectl --kubeconfig /etc/kubernetes/admin.conf)
host_run master1 "${admin[@]}" get --raw /readyz >/dev/null || fail "the apiservers are not ready"
nodes=$(host_run master1 "${admin[@]}" get nodes -o name | sort | tr '\n' ' ')
[ "$nodes" = "node/master1 node/master2 node/master3 node/worker1 node/worker2 " ] || fail "the cluster's nodes are: $nodes"
pki=/etc/kubernetes/pki/etcd
host_run etcd1 env ETCDCTL_API=3 etcdctl --endpoints=https://10.77.0.31:2379 --cacert=$pki/ca.crt \
  --cert=$pki/healthcheck-client.crt --key=$pki/healthcheck-client.key endpoint health --cluster >"$WORK/etcd.txt" 2>&1 ||
  { cat "$WORK/etcd.txt"; fail "etcd is not healthy"; }
pass "the apiservers are ready, the 5 nodes registered ($nodes), etcd healthy"
host_run master1 /media/kubexm/install finish --wait 5m || fail "install finish failed"
pass "install finish: every node joined$([ "$site_kind" = kx ] && echo "; the bootstrap token is deleted")"
