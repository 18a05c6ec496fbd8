#!/usr/bin/env bash
# install packages on an air-gapped Rocky 9 style host: a root that dnf gave the mandatory
# packages of the core group (from the rpm fixture), then entered with no network. rpm
# installs the worker's closure from the bundle; rpm -V finds every file intact; a second run
# changes nothing; the preflight refuses a root with a base package removed.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

start_package_mirrors
packages_manifest "$WORK/site.yaml"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$WORK/cache" \
  "${MIRRORS[@]}" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed"; }
BUNDLE="$WORK/out/install"
ROOT="$WORK/host"
mkdir -p "$ROOT"
dnf_conf "$WORK/dnf.conf" x86_64
dnf -c "$WORK/dnf.conf" --installroot="$ROOT" --releasever=9 --forcearch=x86_64 -y -q \
  --setopt=group_package_types=mandatory group install core >"$WORK/core.log" 2>&1 ||
  { cat "$WORK/core.log"; fail "dnf could not install the core group"; }
stop_mirror
grep -q '^ID="rocky"' "$ROOT/etc/os-release" || fail "the core root has no Rocky os-release"
rpmq() { rpm --root "$1" -qa --qf '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n' | sort; }

# 1. The preflight refuses a root whose rpm database lacks a base package the closure
# relies on, and changes nothing.
base=$(python3 -c "
import json, sys
s = [s for s in json.load(open(sys.argv[1]))['package_sets'] if s['profile'] == 'rocky-9' and s['arch'] == 'amd64'][0]
print(next(r['name'] for r in s['roles']['worker']['relies_on'] if r['requires'] == r['name'] and r['name'] != 'glibc'))
" "$WORK/out/kubexm.lock")
cp -a "$ROOT" "$WORK/broken"
rpm --root "$WORK/broken" -e --nodeps "$base" || fail "could not remove $base"
before=$(rpmq "$WORK/broken")
expect_failure 1 "preflight: $WORK/broken lacks 1 base package that the rocky-9 amd64 closure of role worker relies on; nothing was changed:" \
  unshare -n "$BUNDLE" packages --role worker --root "$WORK/broken"
grep -q "^  $base (" "$WORK/stderr" || { cat "$WORK/stderr"; fail "$base is not named"; }
[ "$before" = "$(rpmq "$WORK/broken")" ] || fail "the refused run changed the rpm database"
[ ! -e "$WORK/broken/var/lib/kubexm" ] || fail "the refused run left files behind"
rm -rf "$WORK/broken"
pass "the preflight refuses a root without $base, names it, and changes nothing"

# 2. The install, offline.
unshare -n "$BUNDLE" packages --role worker --root "$ROOT" >"$WORK/install.out" 2>"$WORK/install.err" ||
  { tail -30 "$WORK/install.err"; fail "install packages failed"; }
grep -q "^installed [0-9]* packages with rpm, offline" "$WORK/install.out" || { cat "$WORK/install.out"; fail "no summary"; }
python3 - "$WORK/out/kubexm.lock" <(rpmq "$ROOT") <<'EOF' || fail "the rpm database does not hold the closure"
import json, sys
lock, installed = sys.argv[1:]
s = [s for s in json.load(open(lock))["package_sets"] if s["profile"] == "rocky-9" and s["arch"] == "amd64"][0]
have = set(open(installed).read().split())
files = {p["file"]: p for p in s["packages"]}
for file in s["roles"]["worker"]["install"]:
    p = files[file]
    evr = p["evr"] if ":" in p["evr"] else "0:" + p["evr"]
    assert f"{p['name']}-{evr}.{p['arch']}" in have, p
print(len(s["roles"]["worker"]["install"]), "packages installed")
EOF
for package in conntrack-tools ipset nfs-utils container-selinux; do
  rpm --root "$ROOT" -V "$package" || fail "rpm -V $package reports changed files"
done
file -L "$ROOT/usr/sbin/conntrack" | grep -q "x86-64" || fail "conntrack is not the x86-64 binary"
pass "rpm installed the worker closure offline; rpm -V finds its files intact"

# 3. Again: nothing to do, nothing changed.
before=$(rpmq "$ROOT")
unshare -n "$BUNDLE" packages --role worker --root "$ROOT" >"$WORK/again.out" 2>&1 || { cat "$WORK/again.out"; fail "second run"; }
grep -q "^nothing to install: all [0-9]* packages of role worker are installed" "$WORK/again.out" ||
  { cat "$WORK/again.out"; fail "the second run did not say it had nothing to do"; }
[ "$before" = "$(rpmq "$ROOT")" ] || fail "the second run changed the rpm database"
pass "a second run installs nothing and says so"
