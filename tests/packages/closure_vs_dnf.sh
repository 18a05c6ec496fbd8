#!/usr/bin/env bash
# At real scale: the closure kubexm-builder computes from the real CentOS Stream 9 BaseOS
# and AppStream metadata (tests/fixtures, about 18,800 packages) is the one dnf computes
# from the same repositories, for an empty system and the common set of names that this
# metadata can satisfy (its conntrack-tools needs a newer libnetfilter_conntrack than it
# carries: that is reported, as dnf's best=True reports it).
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

FIXTURE=$(require_fixture tests/fixtures/centos-stream-9-x86_64)
start_mirror "$FIXTURE"
mkdir -p "$WORK/profiles" "$WORK/empty"
cat >"$WORK/profiles/centos-stream-9.yaml" <<EOF
format: 1
name: centos-stream-9
os: centos
version: "9"
match: {id: [centos], version_id: "9*"}
package_format: rpm
installer: dnf
arches: {amd64: x86_64}
mirror: http://127.0.0.1:$MIRROR_PORT
repositories:
  - {name: baseos, url: "{mirror}/baseos"}
  - {name: appstream, url: "{mirror}/appstream"}
base: {from: comps-core}
names: {conntrack: conntrack-tools, nfs-client: nfs-utils, iscsi: iscsi-initiator-utils}
EOF
names=(ipset socat ebtables ipvsadm iptables iproute chrony curl tar ethtool nfs-utils keepalived haproxy nginx)
cat >"$WORK/profiles/packages.yaml" <<EOF
format: 1
sets: {a: [$(IFS=,; echo "${names[*]}")], b: [conntrack]}
roles: {master: [a], worker: [a], etcd: [a, b], lb: [a]}
EOF
printf 'name: cs9\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [centos-stream-9]\ncomponents: [kubectl]\nroles: [worker]\n' \
  >"$WORK/m.yaml"

"$BUILDER" -q closure -f "$WORK/m.yaml" --os-profiles "$WORK/profiles" --closure full --json --cache "$WORK/cache" \
  >"$WORK/closure.json" 2>"$WORK/closure.err" || { cat "$WORK/closure.err"; fail "closure failed"; }
# closure_names JSON ROLE: the role's closure as name-evr.arch lines, sorted.
closure_names() {
  python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[0]
files = {p['file']: p for p in s['packages']}
print('\n'.join(sorted(f\"{files[f]['name']}-{files[f]['evr']}.{files[f]['arch']}\" for f in s['roles'][sys.argv[2]]['install'])))
" "$1" "$2"
}
closure_names "$WORK/closure.json" worker >"$WORK/ours.txt"

cat >"$WORK/dnf.conf" <<EOF
[main]
reposdir=/dev/null
install_weak_deps=False
gpgcheck=0
best=True
cachedir=$WORK/dnf-cache
[baseos]
name=baseos
baseurl=file://$FIXTURE/baseos
[appstream]
name=appstream
baseurl=file://$FIXTURE/appstream
EOF
dnf_closure "$WORK/dnf.conf" x86_64 "$WORK/empty" "${names[@]}" >"$WORK/dnf.txt"
[ "$(wc -l <"$WORK/dnf.txt")" -gt 100 ] || fail "dnf's list is too short to compare"
diff "$WORK/dnf.txt" "$WORK/ours.txt" || fail "the closure differs from dnf's"
python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[0]
older = {p['name']: p['older']['newest'] for p in s['packages'] if 'older' in p}
assert older == {'perl-Net-SSLeay': '1.94-1.el9'}, older
" "$WORK/closure.json" || fail "the dependency taken older than its newest is not recorded"
pass "the full closure of ${#names[@]} names on the real CentOS Stream 9 metadata is dnf's ($(wc -l <"$WORK/ours.txt") packages)"

# The etcd role adds conntrack: both refuse it for the same reason, with the same chain of
# problems, and we say how to allow an older candidate.
sed -i 's/roles: \[worker\]/roles: [etcd]/' "$WORK/m.yaml"
expect_failure 1 "centos-stream-9 amd64 role etcd: cannot install the best candidate for the job" \
  "$BUILDER" closure -f "$WORK/m.yaml" --os-profiles "$WORK/profiles" --closure full --cache "$WORK/cache"
grep -q "'best: false' in the profile or the manifest's packages:" "$WORK/stderr" || { cat "$WORK/stderr"; fail "no hint at best: false"; }
sed -n 's/^  - //p' "$WORK/stderr" | sort >"$WORK/our-chain.txt"
out=$(dnf -c "$WORK/dnf.conf" --installroot="$WORK/empty" --releasever=9 --forcearch=x86_64 -y --assumeno \
  install "${names[@]}" conntrack-tools 2>&1) || true
sed -n 's/^  - //p' <<<"$out" | sort >"$WORK/dnf-chain.txt"
[ -s "$WORK/dnf-chain.txt" ] || { echo "$out"; fail "dnf does not refuse conntrack-tools"; }
diff "$WORK/dnf-chain.txt" "$WORK/our-chain.txt" || fail "our problem chain is not dnf's"
pass "conntrack-tools is refused by both, with the same problem chain: $(paste -sd';' "$WORK/our-chain.txt")"

# best: false: an older conntrack-tools is taken, the closure is dnf's with best=False, and
# the package says which is newest and why it was not taken.
cp -r "$WORK/profiles" "$WORK/older"
echo "best: false" >>"$WORK/older/centos-stream-9.yaml"
"$BUILDER" -q closure -f "$WORK/m.yaml" --os-profiles "$WORK/older" --closure full --json --cache "$WORK/cache" \
  >"$WORK/older.json" 2>"$WORK/older.err" || { cat "$WORK/older.err"; fail "closure with best: false failed"; }
closure_names "$WORK/older.json" etcd >"$WORK/ours-older.txt"
sed -i 's/^best=True/best=False/' "$WORK/dnf.conf"
dnf_closure "$WORK/dnf.conf" x86_64 "$WORK/empty" "${names[@]}" conntrack-tools >"$WORK/dnf-older.txt"
diff "$WORK/dnf-older.txt" "$WORK/ours-older.txt" || fail "with best: false the closure differs from dnf's with best=False"
grep -q '^conntrack-tools-1.4.5-17.el9.x86_64$' "$WORK/ours-older.txt" || fail "not the newest installable conntrack-tools"
python3 - "$WORK/older.json" <<'PY' || fail "the older candidate is not recorded with its reason"
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert s["best"] is False, s.get("best")
p = [p for p in s["packages"] if p["name"] == "conntrack-tools"][0]
assert p["older"]["newest"] == "1.4.7-4.el9", p
assert "nothing provides libnetfilter_conntrack >= 1.0.9" in p["older"]["why"], p
# perl-Net-SSLeay is older even under best=True (as dnf takes it): the newest needs an OpenSSL
# this metadata lacks. Nothing else is.
older = {q["name"]: q["older"] for q in s["packages"] if "older" in q}
assert set(older) == {"conntrack-tools", "perl-Net-SSLeay"}, older
assert "nothing provides libssl.so.3(OPENSSL_3.2.0)(64bit) needed by perl-Net-SSLeay-1.94-1.el9.x86_64" in older["perl-Net-SSLeay"]["why"], older
PY
grep -q "conntrack-tools 1.4.5-17.el9 taken, not the newest 1.4.7-4.el9: " "$WORK/older.err" || { cat "$WORK/older.err"; fail "no warning for the older candidate"; }
pass "best: false takes conntrack-tools 1.4.5-17.el9 as dnf's best=False does ($(wc -l <"$WORK/ours-older.txt") packages), and records why"

# A pin holds a package to a range: the newest within it, and nothing reported as older.
cp -r "$WORK/profiles" "$WORK/pinned"
printf 'pins:\n  conntrack-tools: ">= 1.4.5, < 1.4.5-17"\n' >>"$WORK/pinned/centos-stream-9.yaml"
"$BUILDER" -q closure -f "$WORK/m.yaml" --os-profiles "$WORK/pinned" --closure full --json --cache "$WORK/cache" \
  >"$WORK/pinned.json" 2>"$WORK/pinned.err" || { cat "$WORK/pinned.err"; fail "closure with a pin failed"; }
closure_names "$WORK/pinned.json" etcd | grep -x 'conntrack-tools-1.4.5-16.el9.x86_64' >/dev/null || fail "the pin was not followed"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))[0]; assert s['pins'] == {'conntrack-tools': '>= 1.4.5, < 1.4.5-17'}, s.get('pins')" \
  "$WORK/pinned.json" || fail "the pin is not recorded"
printf 'pins:\n  conntrack-tools: "< 1.0"\n' >>"$WORK/profiles/centos-stream-9.yaml"
expect_failure 1 "pins: conntrack-tools '< 1.0' leaves none of its versions \(the repositories have 1.4.5-15.el9, 1.4.5-16.el9, 1.4.5-17.el9, 1.4.7-2.el9, 1.4.7-4.el9\)" \
  "$BUILDER" closure -f "$WORK/m.yaml" --os-profiles "$WORK/profiles" --closure full --cache "$WORK/cache"
pass "a pin takes the newest version in its range; a pin no version meets is refused, naming the versions there are"
