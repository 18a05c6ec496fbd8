#!/usr/bin/env bash
# install packages on an air-gapped Debian 12 host: a debootstrap minbase root, entered with
# no network (unshare -n). The worker's closure is installed by the root's own apt from the
# bundle alone; its programs run; a second run changes nothing; a run killed half-way is
# finished by the next; the preflight refuses a root with a base package removed and changes
# nothing; another OS or arch is told what the bundle carries.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

start_package_mirrors
packages_manifest "$WORK/site.yaml"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$WORK/cache" \
  "${MIRRORS[@]}" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed"; }
stop_mirror
BUNDLE="$WORK/out/install"
ROOT="$WORK/host"
ensure_minbase_root "$ROOT"

# fingerprint ROOT: what a failed or dry run must leave exactly as it was.
fingerprint() {
  (cd "$1" && find var/lib/dpkg var/lib/kubexm usr/sbin etc -xdev 2>/dev/null | sort | xargs -d '\n' ls -ld --time-style=+%s 2>/dev/null;
    sha256sum var/lib/dpkg/status)
}

# 1. The preflight refuses a root that lacks a base package the closure relies on (chrony
# needs tzdata, which minbase has) and changes nothing.
cp -a "$ROOT" "$WORK/broken"
chroot "$WORK/broken" dpkg --purge --force-depends tzdata >/dev/null 2>&1 || fail "could not remove tzdata"
before=$(fingerprint "$WORK/broken")
expect_failure 1 "preflight: $WORK/broken lacks 1 base package that the debian-12 amd64 closure of role worker relies on; nothing was changed:" \
  unshare -n "$BUNDLE" packages --role worker --root "$WORK/broken"
grep -q "^  tzdata (chrony requires tzdata)$" "$WORK/stderr" || { cat "$WORK/stderr"; fail "the missing package is not named"; }
[ "$before" = "$(fingerprint "$WORK/broken")" ] || fail "the refused run changed the root"
[ ! -e "$WORK/broken/var/lib/kubexm" ] || fail "the refused run left files behind"
rm -rf "$WORK/broken"
pass "the preflight refuses a root without tzdata, names it and what needs it, and changes nothing"

# A root whose /var/lib is an absolute symlink out of it: nothing is written through it.
cp -a "$ROOT" "$WORK/linked"
mkdir -p "$WORK/outside"
mv "$WORK/linked/var/lib" "$WORK/outside/lib"
ln -s "$WORK/outside/lib" "$WORK/linked/var/lib"
expect_failure 1 "$WORK/linked/var/lib is not a directory \(a symlink\?\); the installer keeps its packages under /var/lib/kubexm/packages and writes nothing through links" \
  unshare -n "$BUNDLE" packages --role worker --root "$WORK/linked"
[ ! -e "$WORK/outside/lib/kubexm" ] || fail "the installer wrote through a symlink out of the root"
rm -rf "$WORK/linked" "$WORK/outside"
pass "a root whose /var/lib links out of it is refused before anything is written"

# 2. A dry run shows the plan and changes nothing.
before=$(fingerprint "$ROOT")
unshare -n "$BUNDLE" packages --role worker --root "$ROOT" --dry-run --json >"$WORK/dry.json" 2>"$WORK/dry.err" ||
  { cat "$WORK/dry.err"; fail "the dry run failed"; }
python3 - "$WORK/dry.json" <<'EOF' || fail "the dry run's report is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "dry-run" and r["profile"] == "debian-12" and r["host"]["arch"] == "amd64", r
names = {p["name"] for p in r["install"]}
assert {"conntrack", "ipset", "ipvsadm", "socat", "nfs-common"} <= names, names
assert not r["missing_base"]
EOF
[ "$before" = "$(fingerprint "$ROOT")" ] || fail "the dry run changed the root"
pass "a dry run reports $(python3 -c "import json;print(len(json.load(open('$WORK/dry.json'))['install']))") packages to install and changes nothing"

# 3. Killed while apt is installing, then run again: the second run finishes the job.
setsid unshare -n "$BUNDLE" packages --role worker --root "$ROOT" >"$WORK/killed.out" 2>&1 &
leader=$!
for _ in $(seq 200); do
  grep -q "^Unpacking" "$WORK/killed.out" 2>/dev/null && break
  sleep 0.05
done
kill -KILL -- "-$leader" 2>/dev/null || true
wait "$leader" 2>/dev/null || true
grep -q "^Unpacking" "$WORK/killed.out" || { cat "$WORK/killed.out"; fail "the install was not under way when killed"; }
unshare -n "$BUNDLE" packages --role worker --root "$ROOT" >"$WORK/install.out" 2>"$WORK/install.err" ||
  { tail -30 "$WORK/install.err"; fail "the run after the kill did not finish the install"; }
grep -q "^installed [0-9]* packages with apt, offline; all [0-9]* packages of role worker are at their locked versions$" \
  "$WORK/install.out" || { cat "$WORK/install.out"; fail "no summary"; }
pass "a run killed during apt is finished by the next one"

# 4. Everything is installed: dpkg says so for every package of the closure, at its locked
# version, and the programs run in the root, offline.
python3 - "$WORK/out/kubexm.lock" "$ROOT/var/lib/dpkg/status" <<'EOF' || fail "dpkg's database does not hold the closure"
import json, re, sys
lock, status = sys.argv[1:]
s = [s for s in json.load(open(lock))["package_sets"] if s["profile"] == "debian-12" and s["arch"] == "amd64"][0]
files = {p["file"]: p for p in s["packages"]}
installed = {}
for stanza in open(status).read().split("\n\n"):
    f = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
    if f.get("Status") == "install ok installed":
        installed[f["Package"]] = f["Version"]
for file in s["roles"]["worker"]["install"]:
    p = files[file]
    assert installed.get(p["name"]) == p["evr"], (p["name"], p["evr"], installed.get(p["name"]))
print(len(s["roles"]["worker"]["install"]), "packages installed")
EOF
unshare -n chroot "$ROOT" conntrack --version | grep -q "conntrack v1.4" || fail "conntrack does not run"
unshare -n chroot "$ROOT" ipset --version | grep -q "ipset v7" || fail "ipset does not run"
unshare -n chroot "$ROOT" socat -V | grep -q "socat version" || fail "socat does not run"
unshare -n chroot "$ROOT" ebtables --version | grep -q "ebtables" || fail "ebtables does not run"
pass "the worker closure is installed at its locked versions; conntrack, ipset, socat and ebtables run"

# 5. Again: nothing to do, nothing changed.
before=$(fingerprint "$ROOT")
unshare -n "$BUNDLE" packages --role worker --root "$ROOT" >"$WORK/again.out" 2>&1 || { cat "$WORK/again.out"; fail "second run"; }
grep -q "^nothing to install: all [0-9]* packages of role worker are installed at their locked versions; nothing changed$" \
  "$WORK/again.out" || { cat "$WORK/again.out"; fail "the second run did not say it had nothing to do"; }
[ "$before" = "$(fingerprint "$ROOT")" ] || fail "the second run changed the root"
pass "a second run installs nothing and says so"

# 5b. What dpkg leaves when it is killed while unpacking (the state the kill above hits only
# sometimes): in its journal (updates/, not yet folded into status), a package marked
# half-installed and needing reinstallation, its files partly gone. dpkg --configure -a
# refuses it; the next run unpacks it again from the bundle.
cp -a "$ROOT" "$WORK/cut"
python3 - "$WORK/cut/var/lib/dpkg/status" "$WORK/cut/var/lib/dpkg/updates/0000" <<'EOF' || fail "could not mark socat half-installed"
import re, sys
status, journal = sys.argv[1:]
stanza = [s for s in open(status).read().split("\n\n") if s.startswith("Package: socat\n")][0]
stanza, n = re.subn(r"^Status: install ok installed$", "Status: install reinstreq half-installed", stanza, flags=re.M)
assert n == 1, n
open(journal, "w").write(stanza + "\n")
EOF
rm -f "$WORK/cut/usr/bin/socat"
unshare -n "$BUNDLE" packages --role worker --root "$WORK/cut" >"$WORK/cut.out" 2>"$WORK/cut.err" ||
  { tail -30 "$WORK/cut.err"; fail "a half-installed package was not reinstalled"; }
grep -q "install ok installed" <(grep -A3 "^Package: socat$" "$WORK/cut/var/lib/dpkg/status") || fail "socat is still not installed"
unshare -n chroot "$WORK/cut" socat -V | grep -q "socat version" || fail "socat does not run after the reinstall"
rm -rf "$WORK/cut"
pass "a package dpkg was killed unpacking is unpacked again from the bundle and configured"

# 6. Another OS, another arch: each told what the bundle carries and what to build.
cp -a "$ROOT" "$WORK/ubuntu"
rm -f "$WORK/ubuntu/etc/os-release" "$WORK/ubuntu/usr/lib/os-release"
printf 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n' >"$WORK/ubuntu/etc/os-release"
expect_failure 1 "this host is Ubuntu 24.04.1 LTS \(ID=ubuntu VERSION_ID=24.04\), amd64; the bundle carries OS packages for debian-12 \(amd64, arm64\), rocky-9 \(amd64, arm64\): build a bundle whose manifest lists os_profiles: \[ubuntu-24.04\]" \
  unshare -n "$BUNDLE" packages --role worker --root "$WORK/ubuntu"
rm -rf "$WORK/ubuntu"
{ grep -v '^arches:' "$WORK/site.yaml"; echo "arches: [arm64]"; } >"$WORK/arm64.yaml"
start_package_mirrors
"$BUILDER" -q build -f "$WORK/arm64.yaml" -o "$WORK/out-arm64" --cache "$WORK/cache" "${MIRRORS[@]}" >/dev/null 2>&1 ||
  fail "the arm64 build failed"
stop_mirror
expect_failure 1 "this host is Debian GNU/Linux 12 \(bookworm\) \(ID=debian VERSION_ID=12\), amd64; the bundle carries debian-12 packages for arm64 only: build it with arches: \[amd64\] too" \
  unshare -n "$WORK/out-arm64/install" packages --role worker --root "$ROOT"
pass "another OS and another arch are refused with what the bundle carries"
