#!/usr/bin/env bash
# Checks a repository set from tools/make-rpm-repo.py with the real dnf, for x86_64 and aarch64:
#  1. the package names of the rocky-9 profile resolve from an empty root, each hard case
#     resolving as tools/make-rpm-repo.py says (newest versions, obsoletes, arch gap), and
#     kubexm-broken fails on its missing library;
#  2. x86-only-tool exists on x86_64 only;
#  3. the mandatory packages of the comps group core install into an empty root (a Rocky
#     Linux 9.5 os-release, binaries of the root's arch), and the profile's names resolved
#     against that root leave out what core already has.
# Usage: check-rpm-fixture.sh [-v] [DIR]   -v prints the resolved package lists; without DIR,
# the cached set of tests/packages/rpm-fixture.sh (built when missing).
set -euo pipefail

VERBOSE=0
if [ "${1:-}" = "-v" ]; then
  VERBOSE=1
  shift
fi

NAMES=(conntrack-tools ipset ipvsadm socat ebtables ethtool iptables iproute chrony curl tar ca-certificates
       kmod nfs-utils iscsi-initiator-utils libseccomp container-selinux keepalived haproxy nginx)
CORE=(basesystem filesystem setup glibc bash coreutils rocky-release rpm shadow-utils curl)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

PASSED=0
pass() {
  PASSED=$((PASSED + 1))
  echo "ok: $*"
}

if [ $# -ge 1 ]; then
  [ -d "$1" ] || fail "no directory $1"
  DIR=$(cd "$1" && pwd)
else
  KUBEXM_SOURCE=${KUBEXM_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
  # shellcheck source=SCRIPTDIR/rpm-fixture.sh
  source "$KUBEXM_SOURCE/tests/packages/rpm-fixture.sh"
  ensure_rpm_repo
  DIR=$RPM_REPO_ROOT
fi
[ -f "$DIR/README.txt" ] || fail "$DIR is not a finished repository set (no README.txt)"
command -v dnf >/dev/null || fail "dnf is not installed"

T=$(mktemp -d "${TMPDIR:-/tmp}/rpm-fixture-XXXXXX")
trap 'rm -rf "$T"' EXIT

cat >"$T/dnf.conf" <<EOF
[main]
reposdir=/dev/null
install_weak_deps=False
gpgcheck=0
best=True
keepcache=False
cachedir=$T/cache
EOF
for repo in BaseOS AppStream extras; do
  # shellcheck disable=SC2016 # $basearch is dnf's, filled in from --forcearch
  printf '\n[%s]\nname=Rocky Linux 9 - %s\nbaseurl=file://%s/rockylinux/9/%s/%s/os\n' \
    "${repo,,}" "$repo" "$DIR" "$repo" '$basearch' >>"$T/dnf.conf"
done

# run_dnf ARCH ROOT ARGS...: dnf on the fixture's repositories for ARCH into ROOT; output in $T/out.
run_dnf() {
  local arch=$1 root=$2
  shift 2
  mkdir -p "$root"
  dnf -c "$T/dnf.conf" --installroot="$root" --releasever=9 --forcearch="$arch" --noplugins -y "$@" \
    >"$T/out" 2>&1
}

# resolve ARCH ROOT NAMES...: an install with --assumeno that must resolve; sets RESOLVED to
# "name arch [epoch:]version-release" lines from dnf's transaction table.
resolve() {
  local arch=$1 root=$2 rc=0
  shift 2
  run_dnf "$arch" "$root" --assumeno install "$@" || rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q '^Dependencies resolved\.' "$T/out" ||
    grep -qE 'Problem|nothing provides|No match for argument|^Error' "$T/out"; then
    cat "$T/out" >&2
    fail "dnf did not resolve '$*' for $arch (exit $rc)"
  fi
  RESOLVED=$(awk '/^Transaction Summary/ { exit }
                  /^[A-Z][a-z]+.*:$/ { on = /^Installing( dependencies)?:$/; next }
                  on && NF { for (i = 1; i <= NF; i++) t[n++] = $i }
                  END { for (i = 0; i + 5 < n; i += 6) print t[i], t[i+1], t[i+2] }' "$T/out")
  local count
  count=$(sed -n 's/^Install  *\([0-9]*\) Packages*$/\1/p' "$T/out")
  [ "$(echo "$RESOLVED" | grep -c .)" = "$count" ] || fail "could not read dnf's table for $arch: $(cat "$T/out")"
}

show() {
  if [ "$VERBOSE" = 1 ]; then
    printf '  %s\n' "${1//$'\n'/$'\n'  }"
  fi
}

has() { grep -q "^$1 " <<<"$RESOLVED"; }
version_of() { awk -v n="$1" '$1 == n { print $3 }' <<<"$RESOLVED"; }

expect_version() {
  local name=$1 want=$2 got
  got=$(version_of "$name")
  [ "$got" = "$want" ] || fail "$ARCH: expected $name $want, dnf chose '${got:-nothing}'"
}

for ARCH in x86_64 aarch64; do
  # 1. The profile's names from an empty root.
  resolve "$ARCH" "$T/empty-$ARCH" "${NAMES[@]}"
  FULL=$RESOLVED
  for name in "${NAMES[@]}"; do
    case $name in
      ebtables | iptables) has iptables-nft || fail "$ARCH: $name did not resolve to iptables-nft" ;;
      *) has "$name" || fail "$ARCH: $name is not in the transaction" ;;
    esac
  done
  foreign=$(awk -v a="$ARCH" '$2 != a && $2 != "noarch"' <<<"$RESOLVED")
  [ -z "$foreign" ] || fail "$ARCH: packages of another arch: $foreign"
  expect_version curl 7.76.1-26.el9
  expect_version libcurl 7.76.1-26.el9
  expect_version keepalived 2.2.8-4.el9
  expect_version libnftnl 1.2.2-3.el9
  expect_version nfs-utils 1:2.5.4-27.el9
  expect_version tar 2:1.34-7.el9
  for name in ipset-libs libmnl nfs-utils-common libnfsidmap rocky-logos-httpd selinux-policy-targeted glibc bash; do
    has "$name" || fail "$ARCH: $name missing from the closure"
  done
  ! has libipset || fail "$ARCH: libipset (obsoleted by ipset-libs) was picked"
  if [ "$ARCH" = x86_64 ]; then
    has x86-only-tool || fail "x86_64: iscsi-initiator-utils did not pull x86-only-tool"
  else
    ! has x86-only-tool || fail "aarch64: x86-only-tool in the closure"
  fi
  pass "$ARCH: the ${#NAMES[@]} names resolve to $(echo "$FULL" | wc -l) packages from an empty root"
  show "$FULL"

  rc=0
  run_dnf "$ARCH" "$T/empty-$ARCH" --assumeno install kubexm-broken || rc=$?
  if [ "$rc" -eq 0 ] ||
    ! grep -qF "nothing provides libmissing.so.9()(64bit) needed by kubexm-broken-1.0-1.el9.$ARCH" "$T/out"; then
    cat "$T/out" >&2
    fail "$ARCH: kubexm-broken did not fail on libmissing.so.9()(64bit) (exit $rc)"
  fi
  pass "$ARCH: kubexm-broken fails: nothing provides libmissing.so.9()(64bit)"

  # 2. The arch gap.
  if [ "$ARCH" = x86_64 ]; then
    resolve "$ARCH" "$T/empty-$ARCH" x86-only-tool
    pass "x86_64: x86-only-tool resolves"
  else
    rc=0
    run_dnf "$ARCH" "$T/empty-$ARCH" --assumeno install x86-only-tool || rc=$?
    if [ "$rc" -eq 0 ] || ! grep -q 'No match for argument: x86-only-tool' "$T/out"; then
      cat "$T/out" >&2
      fail "aarch64: x86-only-tool was found (exit $rc)"
    fi
    pass "aarch64: x86-only-tool does not exist"
  fi

  # 3. The group core, mandatory packages only (what the profile counts as the base), installed.
  ROOT=$T/core-$ARCH
  run_dnf "$ARCH" "$ROOT" --setopt=group_package_types=mandatory group install core ||
    { cat "$T/out" >&2; fail "$ARCH: dnf group install core failed"; }
  rpm --root "$ROOT" -qa --qf '%{NAME}\n' | sort >"$T/installed"
  for name in "${CORE[@]}"; do
    grep -qx "$name" "$T/installed" || fail "$ARCH: core installed without $name: $(tr '\n' ' ' <"$T/installed")"
  done
  ! grep -qx chrony "$T/installed" || fail "$ARCH: chrony (a default, not mandatory, member of core) was installed"
  if ! grep -qx 'ID="rocky"' "$ROOT/etc/os-release" || ! grep -qx 'VERSION_ID="9.5"' "$ROOT/etc/os-release"; then
    fail "$ARCH: $ROOT/etc/os-release is not Rocky Linux 9.5: $(cat "$ROOT/etc/os-release")"
  fi
  grep -q '^Rocky Linux release 9.5' "$ROOT/etc/redhat-release" || fail "$ARCH: no /etc/redhat-release"
  [ -L "$ROOT/bin" ] || fail "$ARCH: /bin -> usr/bin not installed"
  [ -x "$ROOT/bin/sh" ] || fail "$ARCH: /usr/bin/sh not installed"
  machine=$(od -An -tx1 -j18 -N1 "$ROOT/usr/bin/bash" | tr -d ' ')
  [ "$machine" = "$([ "$ARCH" = x86_64 ] && echo 3e || echo b7)" ] ||
    fail "$ARCH: /usr/bin/bash has ELF machine 0x$machine"
  pass "$ARCH: group core installs $(wc -l <"$T/installed") packages; /etc/os-release says rocky 9.5"

  # ... and the names resolved against it: only what core lacks.
  resolve "$ARCH" "$ROOT" "${NAMES[@]}"
  for name in glibc bash curl libcurl openssl-libs ca-certificates; do
    ! has "$name" || fail "$ARCH: $name is in core, but the transaction installs it again"
  done
  for name in chrony conntrack-tools iptables-nft libmnl nfs-utils; do
    has "$name" || fail "$ARCH: $name is not in core, but the transaction lacks it"
  done
  [ "$(echo "$RESOLVED" | wc -l)" -lt "$(echo "$FULL" | wc -l)" ] || fail "$ARCH: relative closure not smaller"
  pass "$ARCH: the names resolve to $(echo "$RESOLVED" | wc -l) packages on top of core"
  show "$RESOLVED"
done

echo "check-rpm-fixture: $PASSED passed, 0 failed"
