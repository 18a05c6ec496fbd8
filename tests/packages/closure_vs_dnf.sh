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
python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[0]
files = {p['file']: p for p in s['packages']}
print('\n'.join(sorted(f\"{files[f]['name']}-{files[f]['evr']}.{files[f]['arch']}\" for f in s['roles']['worker']['install'])))
" "$WORK/closure.json" >"$WORK/ours.txt"

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
pass "the full closure of ${#names[@]} names on the real CentOS Stream 9 metadata is dnf's ($(wc -l <"$WORK/ours.txt") packages)"

# The etcd role adds conntrack: both refuse it for the same reason.
sed -i 's/roles: \[worker\]/roles: [etcd]/' "$WORK/m.yaml"
expect_failure 1 "centos-stream-9 amd64 role etcd: nothing provides libnetfilter_conntrack >= 1.0.9 needed by conntrack-tools-1.4.7-4.el9.x86_64" \
  "$BUILDER" closure -f "$WORK/m.yaml" --os-profiles "$WORK/profiles" --closure full --cache "$WORK/cache"
out=$(dnf -c "$WORK/dnf.conf" --installroot="$WORK/empty" --releasever=9 --forcearch=x86_64 -y --assumeno \
  install conntrack-tools 2>&1) || true
grep -q "nothing provides libnetfilter_conntrack >= 1.0.9 needed by conntrack-tools-1.4.7-4.el9.x86_64" <<<"$out" ||
  { echo "$out"; fail "dnf does not refuse conntrack-tools the same way"; }
pass "conntrack-tools is refused by both, for the same unmet requirement"
