#!/usr/bin/env bash
# Three booted Debian 12 hosts with no network but their LAN run `./install --role=etcd` of
# a kubexm-etcd site. One started alone times out waiting for its quorum, naming the members
# it lacks; then all three at the same time: each waits for the others' quorum, and the cluster
# then reports three healthy members over TLS, a key written through one member is read
# through another, clients without the site's certificates are refused, the backup timer
# is scheduled, and a second run changes nothing and says so.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
BUNDLE_DIR=$KUBEXM_E2E/kh

lan_up
for i in 1 2 3; do
  host_boot "etcd$i" "10.77.0.3$i" "$BUNDLE_DIR"
done
pass "three hosts booted (systemd in a container each, no network but 10.77.0.0/24)"

# A member alone has no quorum: it waits for the others as long as --wait allows, then stops
# with exit status 5 naming them; run again with the others, it goes on.
set +e
host_run etcd1 /media/kubexm/install --role=etcd --wait 20s >"$WORK/alone.out" 2>"$WORK/alone.err"
status=$?
set -e
[ "$status" = 5 ] || { cat "$WORK/alone.err"; fail "etcd1 alone exited $status, not 5"; }
grep -q "etcd is not active after 20 s: its members etcd2 at 10.77.0.32, etcd3 at 10.77.0.33 are not all up. Run again once they are up; done steps are not repeated" \
  "$WORK/alone.err" || { cat "$WORK/alone.err"; fail "etcd1 alone does not name the members it waits for"; }
pass "a member started alone waits for its quorum, then stops (exit 5) naming etcd2 and etcd3"

# All at once, as an admin with three terminals would (etcd1 for the second time).
pids=()
for i in 1 2 3; do
  host_run "etcd$i" /media/kubexm/install --role=etcd >"$WORK/etcd$i.out" 2>"$WORK/etcd$i.err" &
  pids+=($!)
done
for i in 1 2 3; do
  wait "${pids[$((i - 1))]}" || { tail -30 "$WORK/etcd$i.err"; fail "install --role=etcd failed on etcd$i"; }
done
for i in 1 2 3; do
  grep -q "^  health     checked    etcd healthy over TLS, 3 members$" "$WORK/etcd$i.out" ||
    { cat "$WORK/etcd$i.out"; fail "etcd$i does not report a healthy three-member cluster"; }
done
pass "three hosts ran --role=etcd at the same time; each waited for its quorum and reports 3 healthy members"

# The cluster, seen with etcdctl and the site's certificates.
pki=/etc/kubernetes/pki/etcd
ctl() { host_run "$1" env ETCDCTL_API=3 etcdctl --endpoints="https://10.77.0.3${1#etcd}:2379" --cacert=$pki/ca.crt \
  --cert=$pki/healthcheck-client.crt --key=$pki/healthcheck-client.key "${@:2}"; }
ctl etcd1 endpoint health --cluster >"$WORK/health.txt" 2>&1 || { cat "$WORK/health.txt"; fail "endpoint health --cluster"; }
[ "$(grep -c "is healthy" "$WORK/health.txt")" = 3 ] || { cat "$WORK/health.txt"; fail "not three healthy endpoints"; }
ctl etcd1 put /kubexm/e2e "written through etcd1" >/dev/null || fail "put through etcd1"
[ "$(ctl etcd3 get /kubexm/e2e --print-value-only)" = "written through etcd1" ] || fail "etcd3 does not read etcd1's write"
! host_run etcd2 env ETCDCTL_API=3 etcdctl --endpoints=https://10.77.0.32:2379 --cacert=$pki/ca.crt --command-timeout=5s \
  get /kubexm/e2e >/dev/null 2>&1 || fail "a client without a certificate was served"
host_run etcd2 systemctl list-timers --all backup-etcd.timer >"$WORK/timers.txt" 2>&1 || true
grep -q backup-etcd.timer "$WORK/timers.txt" || { cat "$WORK/timers.txt"; host_run etcd2 systemctl status backup-etcd.timer; fail "the backup timer is not scheduled"; }
pass "etcdctl: 3 healthy members over TLS, a write on etcd1 read on etcd3, a client without a certificate refused, the backup timer listed"

# Twice: nothing changes, and it says so.
host_run etcd2 /media/kubexm/install --role=etcd >"$WORK/again.out" 2>"$WORK/again.err" || { cat "$WORK/again.err"; fail "second run"; }
grep -q "every step was done already with these inputs; nothing changed" "$WORK/again.out" || { cat "$WORK/again.out"; fail "the second run changed something"; }
host_run etcd2 /media/kubexm/install status >"$WORK/status.txt" || fail "install status"
grep -q "^  etcd.service  *active, enabled$" "$WORK/status.txt" || { cat "$WORK/status.txt"; fail "status does not show etcd active"; }
grep -q "^  services   done " "$WORK/status.txt" || { cat "$WORK/status.txt"; fail "status does not show the services step done"; }
pass "a second run changes nothing and says so; install status shows each step and etcd active"
