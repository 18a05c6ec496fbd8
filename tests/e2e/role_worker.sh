#!/usr/bin/env bash
# A booted Debian 12 host with no network runs `./install --role=worker` of a kubeadm site:
# - a real containerd 2 is active, reading the rendered config version 3 with its CRI plugin,
#   the bundle's images are there at their locked digests, kubelet is installed and enabled
#   (kubeadm starts it), and the join step waits for the apiserver behind lb.kubexm.local and
#   times out with the documented message (exit 5), as no master is up;
# - a second run repeats nothing but the join's wait, and says so;
# - reset --purge-data --purge-packages returns the host's files to what they were before the
#   install, and installing again works;
# - on a second host for the same node, the installer killed with SIGKILL at 10 random moments
#   and run again each time ends with the same files (path, mode, digest) as the clean run.
# Running a container needs cgroup controllers a booted nspawn host does not get here; that
# containerd runs one from the bundle's images is tested on the machine itself
# (tests/images/install_images.sh).
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
BUNDLE_DIR=$KUBEXM_E2E/kh
INSTALL=/media/kubexm/install

# install_worker HOST WAIT OUT: runs --role=worker, which must stop at the join (exit 5).
install_worker() {
  local rc=0
  host_run "$1" "$INSTALL" --role=worker --wait "$2" >"$3.out" 2>"$3.err" || rc=$?
  [ "$rc" = 5 ] || { tail -40 "$3.err"; fail "$1: install --role=worker exited $rc, expected 5 (waiting for an apiserver)"; }
  grep -q "no apiserver answered at lb.kubexm.local:6443 (10.77.0.100:6443) within ${2%s} s .*kubeadm-join waits for it. Run again once the masters are up; done steps are not repeated" "$3.err" ||
    { tail -20 "$3.err"; fail "$1: the join did not time out with its message"; }
}

# Files an install leaves that change by themselves, or are the package manager's own records
# of a purge (dpkg's database, apt's state, the users and groups packages made, which Debian
# keeps on purpose), are not compared. Nor is /etc/hosts when the host had none: netbase's
# postinst writes one, and its purge keeps it (its postrm only deletes an older default); that
# the installer's block left it is checked on its own.
comparable() {
  grep -v -e ' /etc/passwd-\?$' -e ' /etc/group-\?$' -e ' /etc/shadow-\?$' -e ' /etc/gshadow-\?$' \
    -e ' /etc/subuid-\?$' -e ' /etc/subgid-\?$' -e ' /etc/hosts$' "$1" || true
}

# Two installs of the same node compare equal but for what the packages make per host or in
# the order dpkg happens to configure them: open-iscsi's initiator name is random by design,
# the users and groups packages add get their ids in the order they are configured (a run
# cut off in dpkg configures the rest later; their names must be the same), and a maintainer
# script cut off and run again keeps the configuration it had begun as a .dpkg-old backup.
same_install() {
  grep -v -e ' /etc/passwd-\?$' -e ' /etc/group-\?$' -e ' /etc/shadow-\?$' -e ' /etc/gshadow-\?$' \
    -e ' /etc/iscsi/initiatorname.iscsi$' -e '\.dpkg-old$' "$1" || true
}

# The names of the host's users and groups, for the same comparison.
accounts() {
  { host_run "$1" cut -d: -f1 /etc/passwd | sed 's/^/user /'; host_run "$1" cut -d: -f1 /etc/group | sed 's/^/group /'; } | sort
}

lan_up
host_boot worker1 10.77.0.21 "$BUNDLE_DIR"
host_snapshot worker1 "$WORK/before.txt"
install_worker worker1 15s "$WORK/first"

# What the worker is now.
[ "$(host_run worker1 systemctl is-active containerd)" = active ] || fail "containerd is not active"
host_run worker1 containerd --version | grep -q " 2\.[0-9]" || fail "the bundle's containerd is not a containerd 2"
grep -q "^version = 3" <(host_run worker1 cat /etc/containerd/config.toml) || fail "the config is not version 3"
host_run worker1 ctr plugins ls >"$WORK/plugins.txt"
grep -qE "^io\.containerd\.grpc\.v1 +cri +.* ok" "$WORK/plugins.txt" || { cat "$WORK/plugins.txt"; fail "containerd's CRI plugin is not ok with the rendered config"; }
"$INSTALLER" --bundle "$BUNDLE_DIR/install" info --json |
  python3 -c 'import json,sys; [print(i["ref"], i["manifests"]["amd64"]) for i in json.load(sys.stdin)["bundle"]["images"]]' | sort >"$WORK/wanted.txt"
host_run worker1 ctr -n k8s.io images ls >"$WORK/images.txt"
while read -r ref digest; do
  grep -q "^$ref .*$digest" "$WORK/images.txt" || { cat "$WORK/images.txt"; fail "$ref is not in containerd at $digest"; }
done <"$WORK/wanted.txt"
[ "$(host_run worker1 systemctl is-enabled kubelet)" = enabled ] || fail "kubelet is not enabled"
[ "$(host_run worker1 systemctl is-active kubelet || true)" = inactive ] || fail "kubelet runs before kubeadm join"
host_run worker1 test -x /usr/local/bin/kubelet || fail "kubelet is not installed"
pass "worker: containerd 2 active with config version 3 (CRI ok), $(wc -l <"$WORK/wanted.txt") images at their locked digests, kubelet installed and enabled; the join waited and timed out with its message"

# Twice: only the join's wait again.
install_worker worker1 5s "$WORK/second"
for step in extract packages binaries files os-init services images; do
  grep -q "^install: $step: unchanged (done " "$WORK/second.err" || { cat "$WORK/second.err"; fail "the second run did $step again"; }
done
host_snapshot worker1 "$WORK/installed.txt"
accounts worker1 >"$WORK/installed-accounts.txt"
pass "a second run repeats no step but the join's wait, and says so"

# Reset: the host's files as before the install; then an install works again.
host_run worker1 "$INSTALL" reset --purge-data --purge-packages >"$WORK/reset.out" 2>"$WORK/reset.err" ||
  { cat "$WORK/reset.err"; fail "reset failed"; }
grep -q "^reset node worker1: " "$WORK/reset.out" || { cat "$WORK/reset.out"; fail "reset said nothing"; }
host_snapshot worker1 "$WORK/after-reset.txt"
diff <(comparable "$WORK/before.txt") <(comparable "$WORK/after-reset.txt") >"$WORK/reset.diff" ||
  { cat "$WORK/reset.diff"; fail "after reset the host's files differ from before the install (< before, > after)"; }
host_run worker1 test ! -e /var/lib/kubexm || fail "reset left /var/lib/kubexm"
if host_run worker1 grep -q kubexm /etc/hosts 2>/dev/null; then fail "reset left the kubexm block in /etc/hosts"; fi
install_worker worker1 5s "$WORK/third"
pass "reset returned the host's files to what they were ($(wc -l <"$WORK/before.txt") files); installing again works"
host_stop worker1

# The same node on a fresh host, the installer killed at random moments.
seed=${KUBEXM_E2E_SEED:-$$}
RANDOM=$seed
host_boot worker1b 10.77.0.21 "$BUNDLE_DIR"
kills=0
while [ "$kills" -lt 10 ]; do
  setsid nsenter -t "$(host_pid worker1b)" -a -- "$INSTALL" --role=worker --wait 2s >>"$WORK/killed.out" 2>&1 &
  runner=$!
  sleep "$((RANDOM % 8)).$((RANDOM % 10))"
  if kill -0 "$runner" 2>/dev/null; then
    kill -KILL -- "-$runner" 2>/dev/null || true
    kills=$((kills + 1))
  fi
  wait "$runner" 2>/dev/null || true
done
install_worker worker1b 5s "$WORK/resumed"
host_snapshot worker1b "$WORK/resumed.txt"
accounts worker1b >"$WORK/resumed-accounts.txt"
diff "$WORK/installed-accounts.txt" "$WORK/resumed-accounts.txt" ||
  fail "killed 10 times and run again, the host's users and groups differ from the clean run's (seed $seed)"
diff <(same_install "$WORK/installed.txt") <(same_install "$WORK/resumed.txt") >"$WORK/resume.diff" ||
  { cat "$WORK/resume.diff"; fail "killed 10 times and run again, the host's files differ from the clean run's (< clean, > resumed; seed $seed)"; }
pass "killed with SIGKILL at 10 random moments (seed $seed), each rerun went on; the host's files equal the clean run's"
