#!/usr/bin/env bash
# Installs everything kubexm needs to build, test, demo and benchmark, from Debian's packages.
# Idempotent: packages already present are skipped, so both README commands call it every time.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git file binutils
  # libraries (the installer links the static .a files of the first group)
  libarchive-dev libzstd-dev libssl-dev libacl1-dev libyaml-cpp-dev libcurl4-openssl-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsolv-dev libsolvext-dev libmstch-dev
  # programs the tests and benchmarks compare against or drive
  zstd tar coreutils python3 python3-yaml time makeself hyperfine curl util-linux
  # the scripts kept runnable where they cannot run (tools/e2e-upstream.sh)
  shellcheck
  # the OS package tests: a Debian mirror from apt's lists, a debootstrapped host, an rpm
  # repository built with rpmbuild and createrepo_c, and dnf and apt to compare closures with
  lz4 dpkg-dev apt-utils debootstrap rpm createrepo-c dnf
  # the container image fixture: images built without a daemon, a local registry, skopeo
  umoci docker-registry skopeo
  # the runtimes the installer imports images into
  containerd docker.io
  # the programs that check a rendered site: its load balancers' configs and a real etcd
  # cluster from its units and certificates
  haproxy nginx libnginx-mod-stream keepalived etcd-server etcd-client
  # the role tests' booted hosts: systemd-nspawn, network namespaces and veth pairs
  systemd-container iproute2
)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# The local upstream mirror (tools/make-mirror.py) is built from Debian's arm64 packages as
# well as amd64 ones: apt fetches a foreign arch's .debs once the arch is added.
if ! dpkg --print-foreign-architectures | grep -qx arm64 && [ "$(dpkg --print-architecture)" != arm64 ]; then
  echo "install-deps: adding arm64 as a foreign architecture (for apt-get download PKG:arm64)"
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
