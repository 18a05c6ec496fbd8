#!/usr/bin/env bash
# Benchmarks `kubexm-builder closure` against the package managers answering the same
# question, warm, in one run:
#   deb: the lb role's minimal closure for debian-12 amd64 against the real, full Debian 12
#        index (bookworm, -updates, -security: about 64,000 packages), and
#        `apt-get install --simulate --no-install-recommends` of the same names in a
#        debootstrapped minbase root whose lists point at the same mirror;
#   rpm: the etcd role's closure for an empty system on the real CentOS Stream 9 BaseOS and
#        AppStream metadata (about 18,800 packages, tests/fixtures), and
#        `dnf install --assumeno` of the same names with best=False, from its warm cache.
# Both sides are warm: the builder's cache holds the indices (only InRelease/repomd.xml are
# asked for again, conditionally), apt's lists and dnf's cache are filled. Runs alternate
# between the sides; the median of --runs is reported with each side's peak RSS.
#
#   tools/bench/closure.sh [--runs 5] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

source tools/bench/common.sh
source tests/packages/fixtures.sh
FIXTURE=$PWD/tests/fixtures/centos-stream-9-x86_64
start_package_mirrors --mount "/cs9=$FIXTURE"

measure() { # measure NAME CMD...: appends "seconds rss_kib" to $WORK/NAME
  local name=$1
  shift
  # dnf --assumeno exits 1 after resolving: a status is not a failure here (the sides are
  # checked once before they are timed).
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>&1 || true
  tail -n1 "$WORK/time" >>"$WORK/$name"
}
median() { sort -n -k"$2" "$WORK/$1" | awk -v k="$2" '{v[NR]=$k} END {print v[int((NR+1)/2)]}'; }
# compare TITLE A B: the medians of both sides and their ratio.
compare() {
  local title=$1 a=$2 b=$3
  echo "$title, median of $runs:"
  printf '  %-34s %6.2f s  %6d MiB\n' "$a" "$(median "$a" 1)" $(($(median "$a" 2) / 1024))
  printf '  %-34s %6.2f s  %6d MiB\n' "$b" "$(median "$b" 1)" $(($(median "$b" 2) / 1024))
  awk -v k="$(median "$a" 1)" -v a="$(median "$b" 1)" 'BEGIN {printf "  ratio                              %6.2fx\n", k / a}'
}
alternate() { # alternate A-CMD... -- B-CMD...: runs both sides $runs times, alternating
  local a=() b=() i
  while [ "$1" != -- ]; do a+=("$1"); shift; done
  shift
  b=("$@")
  for i in $(seq "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then measure "${a[@]}" && measure "${b[@]}"; else measure "${b[@]}" && measure "${a[@]}"; fi
  done
}

# deb
printf 'name: bench\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\n' >"$WORK/deb.yaml"
printf 'components: [kubectl]\nroles: [lb]\n' >>"$WORK/deb.yaml"
deb=("$BUILDER" -q closure -f "$WORK/deb.yaml" --cache "$WORK/cache" "${MIRRORS[@]}" --json)
"${deb[@]}" >"$WORK/deb.json" # fills the cache
names=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[0]['roles']['lb']['requested']))" "$WORK/deb.json")
ensure_minbase_root "$WORK/minbase"
apt_in_root "$WORK/minbase" update >/dev/null 2>&1
# apt-get as tests/packages/fixtures.sh's apt_in_root runs it, without the sources rewrite.
apt=(chroot "$WORK/minbase" apt-get -q -o Acquire::By-Hash=no -o Acquire::Languages=none -o APT::Sandbox::User=root
  install --simulate --no-install-recommends)
# shellcheck disable=SC2086
alternate kubexm-deb "${deb[@]}" -- apt-get-s "${apt[@]}" $names

# rpm
mkdir -p "$WORK/profiles" "$WORK/empty"
cat >"$WORK/profiles/centos-stream-9.yaml" <<YAML
format: 1
name: centos-stream-9
os: centos
version: "9"
match: {id: [centos], version_id: "9*"}
package_format: rpm
installer: dnf
arches: {amd64: x86_64}
mirror: http://127.0.0.1:$MIRROR_PORT/cs9
repositories:
  - {name: baseos, url: "{mirror}/baseos"}
  - {name: appstream, url: "{mirror}/appstream"}
base: {from: list, packages: []}
best: false
names: {conntrack: conntrack-tools, nfs-client: nfs-utils, iscsi: iscsi-initiator-utils}
YAML
cp os-profiles/packages.yaml "$WORK/profiles/"
printf 'name: bench\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [centos-stream-9]\n' >"$WORK/rpm.yaml"
printf 'components: [kubectl]\nroles: [etcd]\n' >>"$WORK/rpm.yaml"
rpm=("$BUILDER" -q closure -f "$WORK/rpm.yaml" --os-profiles "$WORK/profiles" --cache "$WORK/cache" --json)
"${rpm[@]}" >"$WORK/rpm.json"
names=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[0]['roles']['etcd']['requested']))" "$WORK/rpm.json")
cat >"$WORK/dnf.conf" <<CONF
[main]
reposdir=/dev/null
install_weak_deps=False
gpgcheck=0
best=False
cachedir=$WORK/dnf-cache
metadata_expire=-1
[baseos]
name=baseos
baseurl=file://$FIXTURE/baseos
[appstream]
name=appstream
baseurl=file://$FIXTURE/appstream
CONF
dnf=(dnf -c "$WORK/dnf.conf" --installroot="$WORK/empty" --releasever=9 --forcearch=x86_64 -y)
"${dnf[@]}" makecache >/dev/null 2>&1
# --assumeno ends a resolved transaction with status 1; `true` is not measured then, so the
# check is that dnf printed the transaction.
# shellcheck disable=SC2086
out=$("${dnf[@]}" --assumeno install $names 2>&1) || true
grep -q '^Operation aborted' <<<"$out" || { echo "$out"; echo "dnf did not resolve $names" >&2; exit 1; }
# shellcheck disable=SC2086
alternate kubexm-rpm "${rpm[@]}" -- dnf-warm "${dnf[@]}" -C --setopt=assumeno=True install $names

compare "closure of the lb role, debian-12 amd64, full Debian 12 index" kubexm-deb apt-get-s
compare "closure of the etcd role, CentOS Stream 9 x86_64, empty system" kubexm-rpm dnf-warm
