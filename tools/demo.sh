#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: build kubexm, start a local copy of the component
# upstreams and of the Debian 12 and Rocky 9 package repositories, build a Kubernetes 1.32
# bundle for amd64 and arm64 from manifests/demo.yaml (binaries, the OS package closures of
# both distributions, and the container images of a kubeadm cluster with calico and an
# internal haproxy from a local registry), carry the self-extracting `install` to "hosts"
# with no network and there verify and extract it, install a worker's OS packages on a
# debootstrapped Debian 12 host and on a Rocky 9 style host, and import the images into a
# containerd with no network. Everything it makes goes to ./out/demo.
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

step "a local copy of the upstreams (dl.k8s.io, github.com releases, ...) and of the distributions' mirrors"
# The test fixtures: the upstreams' layouts with Debian's binaries inside, the real Debian 12
# archive metadata with the .debs the closures need, and an rpm repository set laid out like
# Rocky 9's. All are cached in $KUBEXM_TEST_CACHE (default /var/cache/kubexm-test).
export KUBEXM_BIN=$PWD/$bin KUBEXM_SOURCE=$PWD
source tests/lib.sh
source tests/packages/fixtures.sh
source tests/images/images_lib.sh
source tests/images/containerd.sh
start_package_mirrors
echo "serving them on http://127.0.0.1:$MIRROR_PORT (the upstream URLs are sent there with --mirror)"

step "a local registry with the cluster's images (registry.k8s.io, quay.io, docker.io names; amd64 and arm64)"
# tools/make-images.py builds them from Debian's busybox-static for both arches.
start_image_registry
echo "docker-registry on $REGISTRY holds $(image_refs | wc -l) multi-arch images (the registries are sent there with --registry-mirror)"

# The mirror's binaries are Debian's, not upstream's: the catalogue's pinned digests (the real
# upstream ones) would rightly refuse them, so the demo's manifest pins the mirror's own.
# The manifest names a site of the deployment kubeadm/stacked-etcd/several-masters/internal-haproxy
# (docs/site.md): the bundle carries that cluster's images and every node's rendered files.
cat >"$demo/site.yaml" <<'SITE'
name: demo
kubernetes: {type: kubeadm, version: 1.32.10}
etcd: {type: kubeadm}
network: {plugin: calico, nodelocaldns: true}
loadbalancer: {enabled: true, mode: internal, type: haproxy}
hosts:
  - {name: master1, address: 10.40.0.11/24, os: rocky-9, roles: [master, etcd]}
  - {name: master2, address: 10.40.0.12/24, os: debian-12, roles: [master, etcd]}
  - {name: master3, address: 10.40.0.13/24, os: debian-12, roles: [master, etcd]}
  - {name: worker1, address: 10.40.0.21/24, os: debian-12, roles: [worker]}
  - {name: worker2, address: 10.40.0.22/24, arch: arm64, os: rocky-9, roles: [worker]}
SITE
{
  cat manifests/demo.yaml
  echo "site: site.yaml"
  cat "$MIRROR_ROOT/checksums.yaml"
} >"$demo/demo-site.yaml"
mirrors=("${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}")

step "a Rocky 9 host: the core group, installed by dnf from the local repositories"
rocky=$PWD/$demo/rocky-host
mkdir -p "$rocky"
dnf_conf "$demo/dnf.conf" x86_64
dnf -c "$demo/dnf.conf" --installroot="$rocky" --releasever=9 --forcearch=x86_64 -y -q \
  --setopt=group_package_types=mandatory group install core
echo "$(rpm --root "$rocky" -qa | wc -l) packages in $rocky"

step "kubexm-builder build: resolve, download (verified, arch-checked), lock, pack"
SOURCE_DATE_EPOCH=1700000000 "$bin/kubexm-builder" build -f "$demo/demo-site.yaml" -o "$demo/dist" \
  --cache "$demo/cache" "${mirrors[@]}"
(cd "$demo/dist" && sha256sum -c SHA256SUMS)

step "what the bundle carries for each OS and arch (from its lock)"
python3 - "$demo/dist/kubexm.lock" <<'EOF'
import json, sys
for s in json.load(open(sys.argv[1]))["package_sets"]:
    mib = sum(p["size"] for p in s["packages"]) / 2**20
    roles = ", ".join(f"{r} {len(v['install'])}" for r, v in sorted(s["roles"].items()))
    print(f"{s['profile']:10} {s['arch']:6} {len(s['packages']):4} packages {mib:6.1f} MiB, over a base set of "
          f"{len(s['base'])} (per role: {roles})")
for i in json.load(open(sys.argv[1]))["images"]:
    print(f"image {i['ref']:50} " + " ".join(f"{a} {m['digest'][:19]}" for a, m in sorted(i["arches"].items())))
EOF

step "the mirrors and the registry go away; the same bundle is rebuilt from the lock and the cache alone"
stop_mirror
stop_registry
# --site-dir: the same site PKI, so the same keys in the bundle.
SOURCE_DATE_EPOCH=1700000000 "$bin/kubexm-builder" -q build -f "$demo/demo-site.yaml" --lock "$demo/dist/kubexm.lock" \
  -o "$demo/rebuild" --cache "$demo/cache" --site-dir "$demo/dist/demo.site"
cmp "$demo/dist/install" "$demo/rebuild/install" && echo "byte-identical: $(sha256sum "$demo/rebuild/install" | cut -c1-64)"

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

step "the binaries, per arch, as the ELF headers say"
file "$demo/host/kubexm-dist"/bin/*/etcd/*/etcd | sed "s|$demo/host/kubexm-dist/||; s|, BuildID.*||"

step "the site: every node's files as its host gets them, and what its installer will do"
(cd "$demo/host/kubexm-dist/site/nodes" && for node in *; do
  echo "$node: $(find "$node" -type f | wc -l) files; services $(sed -n 's/^ *services: //p' "$node/node.yaml" | paste -sd' ')"
done)
sed -n '/^phases:/,$p' "$demo/host/kubexm-dist/site/nodes/master1/node.yaml"
haproxy -c -f "$demo/host/kubexm-dist/site/nodes/worker1/etc/kubexm/haproxy/haproxy.cfg"

step "checking the extraction by hand with coreutils"
(cd "$demo/host/kubexm-dist" && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c SHA256SUMS: all $(wc -l <SHA256SUMS) files OK")

step "running it again changes nothing"
"${offline[@]}" "$demo/host/install" extract "$demo/host/kubexm-dist"

step "a Debian 12 host (debootstrap --variant=minbase): ./install packages --role worker, offline"
debian=$PWD/$demo/debian-host
ensure_minbase_root "$debian"
"${offline[@]}" "$demo/host/install" packages --role worker --root "$debian" 2>"$demo/debian-apt.log" |
  grep -v '^  install'
echo "(apt's own output is in $demo/debian-apt.log)"
"${offline[@]}" chroot "$debian" conntrack --version
"${offline[@]}" chroot "$debian" ipset --version

step "the Rocky 9 host: ./install packages --role worker, offline (rpm)"
"${offline[@]}" "$demo/host/install" packages --role worker --root "$rocky" 2>"$demo/rocky-rpm.log" |
  grep -v '^  install'
rpm --root "$rocky" -q conntrack-tools ipset nfs-utils container-selinux

step "running it again on both hosts changes nothing"
"${offline[@]}" "$demo/host/install" packages --role worker --root "$debian" | tail -1
"${offline[@]}" "$demo/host/install" packages --role worker --root "$rocky" | tail -1

step "a containerd on an offline host: ./install images (the host arch's images, streamed from the bundle)"
start_containerd "$PWD/$demo/containerd"
"${offline[@]}" "$demo/host/install" images --address "$CONTAINERD_ADDRESS" 2>"$demo/ctr-import.log"
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images list | awk 'NR == 1 || $1 !~ /^sha256:/ { printf "%-50s %s\n", $1, $3 }'
ctr --address "$CONTAINERD_ADDRESS" -n k8s.io run --rm registry.k8s.io/pause:3.10 demo \
  /bin/busybox sh -c 'echo "a container from the bundle runs: $(uname -m)"'

step "running it again imports nothing"
"${offline[@]}" "$demo/host/install" images --address "$CONTAINERD_ADDRESS"
stop_containerd

step "a booted Debian 12 host with no network (systemd-nspawn): ./install --role=worker as node worker1"
# The host has one interface, on a private LAN with address 10.40.0.21 (worker1's), and the
# bundle on a read-only "USB stick" at /media/kubexm. No master is up in the demo, so the join
# waits 20 s for an apiserver and stops with exit status 5: run again once the masters are up.
source tests/e2e/hosts.sh
lan_up
host_boot worker1 10.40.0.21 "$PWD/$demo/host"
rc=0
host_run worker1 /media/kubexm/install --role=worker --wait 20s 2>"$demo/worker1.log" || rc=$?
grep -E "^install: (this host|[a-z-]+: [^ ]|preflight +[a-z-]+ +warning|error)" "$demo/worker1.log" | grep -v "would\|running apt" || true
echo "(exit status $rc; the whole run, apt's output included, is in $demo/worker1.log)"
host_run worker1 /media/kubexm/install status
host_run worker1 ctr -n k8s.io images list -q | grep -v '^sha256:'

step "the same again on that host: every step is done with these inputs, only the join waits again"
host_run worker1 /media/kubexm/install --role=worker --wait 5s 2>&1 | grep -E "unchanged|error" || true

step "./install reset --purge-data --purge-packages: the host as it was (without those options, OS packages and data stay)"
host_run worker1 /media/kubexm/install reset --purge-data --purge-packages 2>/dev/null
hosts_down

step "done"
echo "bundle digest: $(sha256sum "$demo/host/kubexm-dist/SHA256SUMS" | cut -d' ' -f1)"
echo "everything is under $demo"
