#!/usr/bin/env bash
# What `./install --role=ROLE` refuses on booted hosts, each with its reason and nothing of
# the host changed: an address no node has, a role the node lacks, a port already taken, too
# little disk, a tampered bundle, and an OS the bundle does not carry (an rpm host). A dry
# run prints the plan and changes nothing either.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
BUNDLE_DIR=$KUBEXM_E2E/kh
INSTALL=/media/kubexm/install

# refused HOST CODE PATTERN ARGS...: the installer exits CODE saying PATTERN (its lines
# joined by spaces), and the host's files (and kubexm's own state) are as they were.
refused() {
  local host=$1 code=$2 pattern=$3 rc=0
  shift 3
  host_snapshot "$host" "$WORK/pre.txt"
  host_run "$host" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$code" ] || { cat "$WORK/err"; fail "$host: '$*' exited $rc, expected $code"; }
  tr '\n' ' ' <"$WORK/err" | grep -qE -- "$pattern" || { cat "$WORK/err"; fail "$host: '$*' did not say /$pattern/"; }
  host_snapshot "$host" "$WORK/post.txt"
  diff "$WORK/pre.txt" "$WORK/post.txt" || fail "$host: '$*' changed the host's files"
  host_run "$host" test ! -e /var/lib/kubexm/journal.json || fail "$host: '$*' left a journal"
}

lan_up
host_boot stranger 10.77.0.99 "$BUNDLE_DIR"
refused stranger 1 "no node of the site is this host: none of their addresses is on its interfaces.*worker1 +10\.77\.0\.21 +worker.*this host is 'stranger' with addresses 10\.77\.0\.99" \
  "$INSTALL" --role=worker
pass "a host whose address is no node's is refused, listing the site's nodes and the host's addresses"
host_stop stranger

host_boot worker1 10.77.0.21 "$BUNDLE_DIR"
refused worker1 2 "--role etcd: this host is node worker1 \(its address 10\.77\.0\.21 is on this host\), whose roles are worker" \
  "$INSTALL" --role=etcd
pass "a role the node lacks is refused, naming the node's roles"

host_run worker1 "$INSTALL" --role=worker --dry-run >"$WORK/dry.out" 2>&1 || { cat "$WORK/dry.out"; fail "dry run"; }
grep -qE "^  services +would-run +not done yet: phase [0-9]+: start containerd; enable kubelet" "$WORK/dry.out" &&
  grep -qE "^  actions +would-run +not done yet: run once each, in order: .*\(waits for an apiserver at lb\.kubexm\.local:6443\)" "$WORK/dry.out" &&
  grep -q "^dry run: nothing was changed$" "$WORK/dry.out" || { cat "$WORK/dry.out"; fail "the dry run's plan"; }
host_run worker1 test ! -e /var/lib/kubexm || fail "the dry run made /var/lib/kubexm"
pass "--dry-run prints every step and why it would run, and changes nothing"

# The kubelet's port taken by another program (systemd's socket activation stands in).
host_run worker1 systemd-run --unit=squatter --quiet systemd-socket-activate -l 10250 /bin/cat
sleep 1
refused worker1 4 "preflight found 1 problem.*ports: port 10250 already in use on this host.*--ignore-preflight ports" \
  "$INSTALL" --role=worker
host_run worker1 systemctl stop squatter
pass "a busy port is a preflight failure (exit 4) naming the port, and nothing changes"

# Too little room for the binaries: a 4 MiB /usr/local.
host_run worker1 mount -t tmpfs -o size=4m tmpfs /usr/local
refused worker1 4 "disk: /usr/local/bin has .* free, needs" "$INSTALL" --role=worker
host_run worker1 umount /usr/local
pass "too little disk is a preflight failure naming where and how much"

# A tampered copy of the bundle: a byte of its payload flipped.
cp "$BUNDLE_DIR/install" "$WORK/tampered"
size=$(stat -c %s "$WORK/tampered")
printf '\x55' | dd of="$WORK/tampered" bs=1 seek=$((size - 5000000)) conv=notrunc status=none
host_run worker1 mkdir -p /root/stick
cp "$WORK/tampered" "$WORK/hosts/worker1/root/stick/install"
host_snapshot worker1 "$WORK/pre-tamper.txt"
rc=0
host_run worker1 /root/stick/install --role=worker >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 3 ] || { cat "$WORK/err"; fail "a tampered bundle exited $rc, expected 3"; }
grep -qE "mismatch|corrupt|verification|does not match" "$WORK/err" || { cat "$WORK/err"; fail "the tampering is not named"; }
host_snapshot worker1 "$WORK/post-tamper.txt"
diff <(grep -v " /root/stick/" "$WORK/pre-tamper.txt") <(grep -v " /root/stick/" "$WORK/post-tamper.txt") ||
  fail "a tampered bundle changed the host's files"
pass "a tampered bundle is refused (exit 3) and the host's files are as they were"
host_stop worker1

# An rpm host (Rocky 9 style, made by dnf): the bundle carries Debian 12 only.
start_package_mirrors
dnf_conf "$WORK/dnf.conf" x86_64
mkdir -p "$WORK/rocky"
dnf -c "$WORK/dnf.conf" --installroot="$WORK/rocky" --releasever=9 --forcearch=x86_64 -y -q \
  --setopt=group_package_types=mandatory group install core >"$WORK/dnf.log" 2>&1 || { cat "$WORK/dnf.log"; fail "dnf"; }
cp "$BUNDLE_DIR/install" "$WORK/rocky/install"
rc=0
unshare -n chroot "$WORK/rocky" /install --bundle /install --role=worker --node worker1 >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" = 4 ] || { cat "$WORK/err"; fail "an rpm host exited $rc, expected 4"; }
grep -q "os: this host is .*rocky.*the bundle carries OS packages for debian-12 only" "$WORK/err" ||
  { cat "$WORK/err"; fail "the rpm host's refusal does not name the OS"; }
[ ! -e "$WORK/rocky/var/lib/kubexm" ] || fail "the rpm host got /var/lib/kubexm"
pass "an OS the bundle does not carry is a preflight failure naming it and the bundle's"
