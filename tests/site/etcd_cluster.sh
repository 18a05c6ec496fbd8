#!/usr/bin/env bash
# A real three-member etcd cluster from a rendered site: the site's etcd hosts are
# 127.0.0.11, .12 and .13; each member runs the ExecStart of its rendered kubexm-etcd.conf
# drop-in, as written, in a mount namespace where /etc is the host's with the node's
# rendered files over it, /usr/local/bin holds Debian's etcd, and the data directory is
# its own. etcdctl over TLS, with the rendered healthcheck client certificate, must find
# every member healthy, write through one member and read through another; a member
# without a client certificate is refused.
source "$(dirname "$0")/../lib.sh"

command -v etcd >/dev/null && command -v etcdctl >/dev/null || fail "etcd and etcdctl are missing (tools/install-deps.sh)"
[ "$(id -u)" = 0 ] || fail "the members run in mount namespaces of their own, which needs root"

cat >"$WORK/site.yaml" <<'SITE'
name: loop
kubernetes: {type: kubeadm, version: 1.32.10}
etcd: {type: kubexm, autoBackupEtcd: true, dataDir: /var/lib/etcd}
hosts:
  - {name: master1, address: 127.0.0.21, roles: [master, worker]}
  - {name: etcd1, address: 127.0.0.11, roles: [etcd]}
  - {name: etcd2, address: 127.0.0.12, roles: [etcd]}
  - {name: etcd3, address: 127.0.0.13, roles: [etcd]}
SITE
"$BUILDER" site -f "$WORK/site.yaml" -o "$WORK/out" >"$WORK/render.out" 2>&1 || { cat "$WORK/render.out"; fail "site -o failed"; }

# The ExecStart of a drop-in, its continuation lines joined: the command etcd runs on site.
exec_start() {
  sed -n '/^ExecStart=./,/[^\\]$/p' "$1" | sed 's/^ExecStart=//; s/ *\\$//' | tr -s ' \n' ' '
}

mkdir -p "$WORK/bin"
ln -s "$(command -v etcd)" "$WORK/bin/etcd"
ln -s "$(command -v etcdctl)" "$WORK/bin/etcdctl"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop_daemon "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for n in 1 2 3; do
  node=$WORK/out/nodes/etcd$n
  command=$(exec_start "$node/usr/lib/systemd/system/etcd.service.d/kubexm-etcd.conf")
  [[ $command == "/usr/local/bin/etcd "*"--name=etcd$n"* ]] || fail "etcd$n's drop-in runs '$command'"
  mkdir -p "$WORK/data$n" "$WORK/upper$n" "$WORK/work$n"
  # shellcheck disable=SC2086 # the command is split as systemd splits it
  unshare -m sh -c "
    mount -t overlay overlay -o lowerdir='$node/etc':/etc /etc &&
    mount -t overlay overlay -o lowerdir='$WORK/bin':/usr/local/bin /usr/local/bin &&
    mount --bind '$WORK/data$n' /var/lib/etcd &&
    cd /var/lib/etcd && exec $command" >"$WORK/etcd$n.log" 2>&1 &
  pids+=($!)
done

pki=$WORK/out/nodes/etcd1/etc/kubernetes/pki/etcd
endpoints=https://127.0.0.11:2379,https://127.0.0.12:2379,https://127.0.0.13:2379
ctl() {
  ETCDCTL_API=3 etcdctl --cacert="$pki/ca.crt" --cert="$pki/healthcheck-client.crt" --key="$pki/healthcheck-client.key" \
    --dial-timeout=2s "$@"
}
for n in 1 2 3; do
  await_daemon "etcd$n" "${pids[$((n - 1))]}" "$WORK/etcd$n.log" ctl --endpoints="https://127.0.0.1$n:2379" endpoint health
done
ctl --endpoints=https://127.0.0.11:2379 endpoint health --cluster >"$WORK/health.out" 2>&1 ||
  { cat "$WORK/health.out" "$WORK"/etcd*.log | tail -40; fail "the cluster is not healthy"; }
[ "$(grep -c "is healthy" "$WORK/health.out")" = 3 ] || { cat "$WORK/health.out"; fail "not all three members are healthy"; }
ctl --endpoints=https://127.0.0.11:2379 member list -w simple >"$WORK/members.out"
for n in 1 2 3; do
  grep -q "etcd$n, https://127.0.0.1$n:2380, https://127.0.0.1$n:2379" "$WORK/members.out" ||
    { cat "$WORK/members.out"; fail "etcd$n is not a member with its rendered URLs"; }
done
pass "three members from the rendered units and certificates: endpoint health --cluster reports all healthy"

ctl --endpoints=https://127.0.0.12:2379 put /kubexm/check rendered >/dev/null || fail "put through etcd2 failed"
[ "$(ctl --endpoints=https://127.0.0.13:2379 get /kubexm/check --print-value-only)" = rendered ] ||
  fail "etcd3 does not see what etcd2 wrote"
# The apiserver's client certificate (kubeadm's pki on the master) is accepted too.
mpki=$WORK/out/nodes/master1/etc/kubernetes/pki
ETCDCTL_API=3 etcdctl --endpoints=$endpoints --cacert="$mpki/etcd/ca.crt" --cert="$mpki/apiserver-etcd-client.crt" \
  --key="$mpki/apiserver-etcd-client.key" get /kubexm/check --print-value-only | grep -qx rendered ||
  fail "the apiserver's etcd client certificate is refused"
pass "a write through one member is read through another, with the apiserver's client certificate too"

if ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379 --cacert="$pki/ca.crt" --dial-timeout=2s \
  get /kubexm/check >"$WORK/anon.out" 2>&1; then
  fail "a client without a certificate was let in"
fi
# A certificate of the cluster CA, not etcd's, is refused as well.
if ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379 --cacert="$pki/ca.crt" \
  --cert="$mpki/apiserver-kubelet-client.crt" --key="$mpki/apiserver-kubelet-client.key" --dial-timeout=2s \
  get /kubexm/check >"$WORK/wrongca.out" 2>&1; then
  fail "a client certificate of another CA was let in"
fi
pass "clients without a certificate of etcd's CA are refused"

# The rendered backup script, as its timer runs it, against the running member; twice, so
# that it keeps both snapshots (it keeps the newest 6).
script=$WORK/out/nodes/etcd1/usr/local/bin/kube-scripts/etcd-backup.sh
mkdir -p "$WORK/backups"
for run in 1 2; do
  unshare -m sh -c "
    mount -t overlay overlay -o lowerdir='$WORK/out/nodes/etcd1/etc':/etc /etc &&
    mount -t overlay overlay -o lowerdir='$WORK/bin':/usr/local/bin /usr/local/bin &&
    mount --bind '$WORK/backups' /var/backups &&
    exec '$script'" >"$WORK/backup.out" 2>&1 || { cat "$WORK/backup.out"; fail "etcd-backup.sh failed (run $run)"; }
  sleep 1
done
mapfile -t snapshots < <(find "$WORK/backups/kube_etcd" -name snapshot.db)
[ "${#snapshots[@]}" = 2 ] || fail "etcd-backup.sh left ${#snapshots[@]} snapshots, not 2"
ETCDCTL_API=3 etcdctl snapshot status "${snapshots[0]}" -w simple >/dev/null || fail "the snapshot is not one"
pass "etcd-backup.sh saves a snapshot etcdctl can read"
