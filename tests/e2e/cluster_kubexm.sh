#!/usr/bin/env bash
# A kubexm cluster brought up on ten booted hosts with no network but their LAN, from one
# bundle, every host's `./install --role=ROLE` started at the same moment: two lb hosts
# (keepalived + haproxy, the VIP), three etcd hosts, three masters (the control plane under
# systemd) and two workers. Real etcd, containerd, haproxy, keepalived and kubectl run;
# Debian builds no kube-apiserver, controller-manager, scheduler, kubelet or kube-proxy, so
# kubexm-standin stands in for them: it checks the certificates and kubeconfigs it is given
# (each check a line of /var/log/kubexm-standin/<program>.log that this test asserts) and does
# what the bring-up depends on (the apiservers keep their objects in the real etcd, the
# kubelets join by TLS bootstrap through the VIP).
# Proven: each host waits for what it needs and every install completes; the steps complete
# in the site's phase order; every node registered, the workers' client certificates signed
# by the cluster CA; a second run on every host changes nothing; `install kubeconfig` gives
# the admin kubeconfig; `install finish` lists the nodes and deletes the bootstrap token
# (tests/site/control_plane.sh shows the token refused after that).
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
source "$KUBEXM_SOURCE/tests/e2e/site.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
BUNDLE=$KUBEXM_E2E/kx
[ -x "$BUNDLE/install" ] || fail "no kx bundle in $BUNDLE (tests/e2e/bundles.sh builds it)"

lan_up
e2e_boot_all "$BUNDLE"
pass "ten hosts booted on a LAN of their own"

# Every host at once, as an admin with ten terminals would: each waits for what it needs.
started=$SECONDS
e2e_install_all 15m
pass "every host's install completed, all started at once, in $((SECONDS - started)) s"

# What each stand-in checked: a failed check would have stopped its service.
for host in "${E2E_HOSTS[@]}"; do
  if host_run "$host" sh -c 'cat /var/log/kubexm-standin/*.log 2>/dev/null' | grep "check FAILED"; then
    fail "a stand-in's check failed on $host"
  fi
done
expect_log() { # HOST PROGRAM TEXT
  host_run "$1" cat "/var/log/kubexm-standin/$2.log" | grep -qF "$3" ||
    { host_run "$1" cat "/var/log/kubexm-standin/$2.log" | tail -20; fail "$1's $2 did not log: $3"; }
}
for master in master1 master2 master3; do
  expect_log $master kube-apiserver "check ok: serving certificate: /etc/kubernetes/pki/apiserver.crt verifies against /etc/kubernetes/pki/ca.crt"
  expect_log $master kube-apiserver "check ok: the serving certificate is valid for ${E2E_ADDRESS[$master]}"
  expect_log $master kube-apiserver "check ok: etcd client: /etc/kubernetes/pki/apiserver-etcd-client.crt verifies against /etc/kubernetes/pki/etcd/ca.crt"
  expect_log $master kube-apiserver "etcd is healthy at https://10.77.0.31:2379,https://10.77.0.32:2379,https://10.77.0.33:2379"
  expect_log $master kube-controller-manager "check ok: controller-manager: the client certificate system:kube-controller-manager verifies against its CA"
  expect_log $master kube-scheduler "reached the apiserver at https://127.0.0.1:6443 as system:kube-scheduler"
done
for worker in worker1 worker2; do
  expect_log $worker kubelet "check ok: kubelet bootstrap: /etc/kubernetes/bootstrap-kubelet.conf points at lb.kubexm.local"
  expect_log $worker kubelet "TLS bootstrap done"
  expect_log $worker kubelet "registered node $worker"
  expect_log $worker kube-proxy "reached the apiserver at https://lb.kubexm.local:6443 as system:kube-proxy"
  grep -q "^  health .*kubelet joined as CN=system:node:$worker,O=system:nodes" "$WORK/$worker.out" ||
    { cat "$WORK/$worker.out"; fail "$worker's health step does not report its kubelet joined"; }
  [ "$(host_run $worker awk '$2 == "lb.kubexm.local" {print $1}' /etc/hosts)" = 10.77.0.100 ] ||
    { host_run $worker cat /etc/hosts; fail "$worker does not reach the apiservers through the VIP"; }
done
pass "the stand-ins' checks held on every host: certificates against their CAs, kubeconfigs at lb.kubexm.local; the workers bootstrapped through the VIP"

# The cluster, as an admin sees it from master1 with the real kubectl and admin.conf.
host_run master1 kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json >"$WORK/nodes.json" ||
  fail "kubectl get nodes on master1 failed"
nodes=$(python3 -c 'import json, sys; print(" ".join(sorted(i["metadata"]["name"] for i in json.load(open(sys.argv[1]))["items"])))' "$WORK/nodes.json")
[ "$nodes" = "master1 master2 master3 worker1 worker2" ] || fail "the cluster's nodes are '$nodes'"
epki=/etc/kubernetes/pki/etcd
host_run etcd2 env ETCDCTL_API=3 etcdctl --endpoints=https://10.77.0.32:2379 --cacert=$epki/ca.crt \
  --cert=$epki/healthcheck-client.crt --key=$epki/healthcheck-client.key get --keys-only --prefix /registry/nodes/ |
  grep -c . >"$WORK/etcd-nodes.out" || true
[ "$(cat "$WORK/etcd-nodes.out")" = 5 ] || fail "etcd holds $(cat "$WORK/etcd-nodes.out") nodes, not 5"
pass "kubectl on master1 lists the five nodes: $nodes; etcd holds them"

# The phases, from each host's journal: a step of phase N completed before the step of phase
# N+1 that needs it (etcd's quorum before the apiservers, the first master's bootstrap
# objects before the workers' kubelets joined).
for host in "${E2E_HOSTS[@]}"; do
  host_run "$host" cat /var/lib/kubexm/journal.json >"$WORK/$host.journal.json"
done
for worker in worker1 worker2; do
  host_run $worker cat /var/log/kubexm-standin/kubelet.log >"$WORK/$worker.kubelet.log"
done
python3 - "$WORK" <<'PY' || fail "the steps did not complete in phase order"
import json, sys
work = sys.argv[1]
def done(host, step):
    steps = json.load(open(f"{work}/{host}.journal.json"))["steps"]
    return steps[step]["finished"] if isinstance(steps, dict) else next(s["finished"] for s in steps if s["name"] == step)
etcd = max(done(h, "services") for h in ("etcd1", "etcd2", "etcd3"))
apiservers = min(done(h, "services") for h in ("master1", "master2", "master3"))
bootstrap = done("master1", "actions")
def bootstrapped(host):  # the kubelet stand-in's log: "<UTC time> kubelet: TLS bootstrap done: ..."
    return next(line.split()[0] for line in open(f"{work}/{host}.kubelet.log") if "TLS bootstrap done" in line)
joined = min(bootstrapped(h) for h in ("worker1", "worker2"))
assert done("lb1", "services") <= joined and done("lb2", "services") <= joined, "the lb hosts came after a worker joined"
assert etcd <= apiservers, f"an apiserver was ready ({apiservers}) before etcd's last member ({etcd})"
assert bootstrap <= joined, f"a worker joined ({joined}) before master1 applied the bootstrap objects ({bootstrap})"
print(f"etcd members active by {etcd}; apiservers from {apiservers}; bootstrap applied {bootstrap}; workers joined from {joined}")
PY
pass "the steps completed in phase order"

# A second run on every host changes nothing and says so.
for host in "${E2E_HOSTS[@]}"; do
  host_run "$host" /media/kubexm/install --role="$(e2e_role "$host")" >"$WORK/$host.again" 2>&1 ||
    { cat "$WORK/$host.again"; fail "the second run failed on $host"; }
  grep -q "nothing changed" "$WORK/$host.again" || { cat "$WORK/$host.again"; fail "the second run on $host changed something"; }
done
pass "a second run on every host changes nothing"

# The admin's kubeconfig, and the end of joining.
[ "$(host_run master1 /media/kubexm/install kubeconfig)" = /etc/kubernetes/admin.conf ] || fail "install kubeconfig"
host_run master1 /media/kubexm/install kubeconfig --write >"$WORK/kubeconfig.out" || fail "install kubeconfig --write failed"
grep -q "^/root/.kube/config written" "$WORK/kubeconfig.out" || { cat "$WORK/kubeconfig.out"; fail "install kubeconfig --write"; }
host_run master1 env HOME=/root kubectl get nodes -o name | grep -c . | grep -qx 5 || fail "kubectl with ~/.kube/config"
host_run master1 /media/kubexm/install finish --wait 2m >"$WORK/finish.out" 2>"$WORK/finish.err" ||
  { cat "$WORK/finish.err"; fail "install finish failed"; }
grep -q "^cluster e2e-kx: all 5 masters and workers joined; the bootstrap token's Secret bootstrap-token-[a-z0-9]* deleted: no node joins" \
  "$WORK/finish.out" || { cat "$WORK/finish.out"; fail "install finish's report"; }
[ "$(grep -c "^  [mw][a-z]*[0-9] .* True$" "$WORK/finish.out")" = 5 ] || { cat "$WORK/finish.out"; fail "install finish lists not 5 ready nodes"; }
host_run etcd2 env ETCDCTL_API=3 etcdctl --endpoints=https://10.77.0.32:2379 --cacert=$epki/ca.crt \
  --cert=$epki/healthcheck-client.crt --key=$epki/healthcheck-client.key get --keys-only --prefix /registry/secrets/kube-system/bootstrap-token- >"$WORK/tokens.out" ||
  fail "etcdctl get on etcd2 failed"
[ ! -s "$WORK/tokens.out" ] || { cat "$WORK/tokens.out"; fail "etcd still holds the bootstrap token's Secret after install finish"; }
pass "install kubeconfig gives admin.conf (and ~/.kube/config with --write); install finish: $(head -1 "$WORK/finish.out" | cut -c1-80)..."

# A node installed after `install finish` is refused the token: it waits (the first master
# may not have applied it yet) and then stops with exit status 5, naming both causes and how
# to put the token back; with the token applied again on master1 it joins, and finish, run
# on another master this time, deletes the token once more.
host_run worker2 /media/kubexm/install reset --purge-data >"$WORK/reset.out" 2>&1 || { cat "$WORK/reset.out"; fail "install reset on worker2"; }
host_run worker2 test ! -e /var/lib/kubelet || { cat "$WORK/reset.out"; fail "reset --purge-data left /var/lib/kubelet on worker2"; }
set +e
host_run worker2 /media/kubexm/install --role=worker --wait 20s >"$WORK/late.out" 2>"$WORK/late.err"
status=$?
set -e
[ "$status" = 5 ] || { cat "$WORK/reset.out" "$WORK/late.out" "$WORK/late.err"; fail "worker2's install with a deleted token exited $status, not 5"; }
grep -q "the apiserver at lb.kubexm.local:6443 refused this node's bootstrap token (id [a-z0-9]*, in /etc/kubernetes/bootstrap-kubelet.conf) for 20 s. Either master1 has not applied it yet" "$WORK/late.err" &&
  grep -q "or \`./install finish\` deleted it once every node had joined: put it back on master1 (kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/addons/kubexm-bootstrap.yaml), run this install again" "$WORK/late.err" ||
  { cat "$WORK/late.err"; fail "the refusal of a deleted token does not say so, or how to mend it"; }
host_run worker2 test ! -e /var/lib/kubelet/pki/kubelet-client-current.pem || fail "worker2's kubelet got a certificate with a deleted token"
host_run master1 kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/addons/kubexm-bootstrap.yaml >/dev/null ||
  fail "applying the bootstrap token again on master1 failed"
host_run worker2 /media/kubexm/install --role=worker --wait 5m >"$WORK/rejoin.out" 2>"$WORK/rejoin.err" ||
  { cat "$WORK/rejoin.err"; fail "worker2 did not join with the token applied again"; }
grep -q "^  health .*kubelet joined as CN=system:node:worker2,O=system:nodes" "$WORK/rejoin.out" ||
  { cat "$WORK/rejoin.out"; fail "worker2's rejoin does not report its kubelet joined"; }
host_run master2 /media/kubexm/install finish --wait 2m >"$WORK/finish2.out" 2>"$WORK/finish2.err" ||
  { cat "$WORK/finish2.err"; fail "install finish on master2 failed"; }
grep -q "the bootstrap token's Secret bootstrap-token-[a-z0-9]* deleted: no node joins with it any more; to join another, apply /etc/kubernetes/addons/kubexm-bootstrap.yaml again on master1" "$WORK/finish2.out" ||
  { cat "$WORK/finish2.out"; fail "install finish on master2"; }
pass "a node installed after finish waits for the token, then says it is refused and how to put it back; with it back it joins; finish works on master2 too"

# A node installed from a bundle of the same site built with another PKI (another cluster's
# CA): the apiserver behind lb.kubexm.local does not prove itself against that CA, so the
# node refuses to send it the token and says which bundle to use.
other=$KUBEXM_E2E/kx-other/install
[ -x "$other" ] || fail "no kx-other bundle in $KUBEXM_E2E (tests/e2e/bundles.sh builds it)"
csrs() { host_run master1 kubectl --kubeconfig /etc/kubernetes/admin.conf get certificatesigningrequests -o name | sort; }
csrs >"$WORK/csrs-before.txt" || fail "kubectl get csr"
host_run worker2 /media/kubexm/install reset --purge-data >"$WORK/reset2.out" 2>&1 || { cat "$WORK/reset2.out"; fail "install reset on worker2"; }
cp "$other" "$WORK/hosts/worker2/root/install-other"
set +e
host_run worker2 /root/install-other --role=worker --wait 5m >"$WORK/other.out" 2>"$WORK/other.err"
status=$?
set -e
[ "$status" = 1 ] || { cat "$WORK/other.err"; fail "worker2's install from another cluster's bundle exited $status, not 1"; }
grep -q "the apiserver at lb.kubexm.local:6443 is not the cluster this node's files are for: the server at 10.77.0.100:6443 does not prove it is lb.kubexm.local" "$WORK/other.err" &&
  grep -q "install this node from the bundle the cluster's masters were installed from" "$WORK/other.err" ||
  { cat "$WORK/other.err"; fail "the install from another cluster's bundle does not say so"; }
csrs >"$WORK/csrs-after.txt" || fail "kubectl get csr"
diff "$WORK/csrs-before.txt" "$WORK/csrs-after.txt" || fail "the node of another cluster's bundle sent a certificate request"
pass "a node installed from a bundle with another cluster CA stops before sending its token, and says which bundle to use"
