#!/usr/bin/env bash
# A kubexm control plane from a rendered site, on this machine's loopback: a real etcd
# (127.0.0.31) and master1 (127.0.0.41), each process run as its rendered drop-in's ExecStart
# says, in a mount namespace where /etc and /var are the machine's with the node's rendered
# files over them (and lb.kubexm.local in /etc/hosts). Debian builds no kube-apiserver,
# controller-manager, scheduler, kubelet or kube-proxy: kubexm-standin stands in for them,
# checking the certificates and kubeconfigs they are given and doing what the bring-up needs
# (the apiserver keeps its objects in the real etcd). kubectl is the bundle's real one.
# Proven: the bootstrap objects are applied with kubectl and land in etcd; worker1's kubelet
# gets its client certificate by TLS bootstrap (the token, the request approved through the
# applied binding, signed by the cluster CA) and registers its node; once the token's Secret
# is deleted, the token is refused.
source "$(dirname "$0")/../lib.sh"

STANDIN="$KUBEXM_BIN/kubexm-standin"
[ -x "$STANDIN" ] || fail "$STANDIN is missing (it is built with the tests)"
command -v etcd >/dev/null && command -v etcdctl >/dev/null || fail "etcd and etcdctl are missing (tools/install-deps.sh)"
[ "$(id -u)" = 0 ] || fail "the nodes' processes run in mount namespaces of their own, which needs root"
ensure_mirror
KUBECTL=$MIRROR_ROOT/dl.k8s.io/release/v1.32.10/bin/linux/amd64/kubectl
[ -f "$KUBECTL" ] || fail "the mirror has no kubectl at $KUBECTL"

cat >"$WORK/site.yaml" <<'SITE'
name: loop
kubernetes: {type: kubexm, version: 1.32.10}
etcd: {type: kubexm}
hosts:
  - {name: etcd1, address: 127.0.0.31, roles: [etcd]}
  - {name: master1, address: 127.0.0.41, roles: [master]}
  - {name: worker1, address: 127.0.0.51, roles: [worker]}
SITE
"$BUILDER" site -f "$WORK/site.yaml" -o "$WORK/out" >"$WORK/render.out" 2>&1 || { cat "$WORK/render.out"; fail "site -o failed"; }
NODES=$WORK/out/nodes

mkdir -p "$WORK/bin"
for program in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  ln -s "$STANDIN" "$WORK/bin/$program"
done
ln -s "$(command -v etcd)" "$WORK/bin/etcd"
install -m 0755 "$KUBECTL" "$WORK/bin/kubectl"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop_daemon "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The ExecStart of a drop-in, its continuation lines joined: the command the node runs.
exec_start() {
  sed -n '/^ExecStart=./,/[^\\]$/p' "$1" | sed 's/^ExecStart=//; s/ *\\$//' | tr -s ' \n' ' '
}

# on_node NODE LOG COMMAND: runs COMMAND (a string, split as systemd splits it) as NODE would,
# in the background; its pid is added to pids.
on_node() {
  local node=$1 log=$2 command=$3 state=$WORK/state/$1 var=$NODES/$1/var
  mkdir -p "$state"/{extra,etc-up,etc-work,var-up,var-work,data}
  [ -d "$var" ] || var=$WORK/empty
  mkdir -p "$WORK/empty"
  printf '127.0.0.1 localhost\n127.0.0.41 lb.kubexm.local master1\n' >"$state/extra/hosts"
  unshare -m sh -c "
    mount -t overlay overlay -o lowerdir='$state/extra':'$NODES/$node/etc':/etc,upperdir='$state/etc-up',workdir='$state/etc-work' /etc &&
    mount -t overlay overlay -o lowerdir='$WORK/bin':/usr/local/bin /usr/local/bin &&
    mount -t overlay overlay -o lowerdir='$var':/var,upperdir='$state/var-up',workdir='$state/var-work' /var &&
    mkdir -p /var/lib/etcd && mount --bind '$state/data' /var/lib/etcd &&
    cd / && exec $command" >"$log" 2>&1 &
  pids+=($!)
}

unit() { echo "$NODES/$1/usr/lib/systemd/system/$2.service.d/kubexm-$3.conf"; }

# etcd1, as rendered.
on_node etcd1 "$WORK/etcd1.log" "$(exec_start "$(unit etcd1 etcd etcd)")"
epki=$NODES/etcd1/etc/kubernetes/pki/etcd
await_daemon etcd1 "${pids[-1]}" "$WORK/etcd1.log" env ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.31:2379 \
  --cacert="$epki/ca.crt" --cert="$epki/healthcheck-client.crt" --key="$epki/healthcheck-client.key" endpoint health

# master1's control plane, as rendered.
on_node master1 "$WORK/apiserver.log" "$(exec_start "$(unit master1 kube-apiserver apiserver)")"
apiserver=${pids[-1]}
PKI=$NODES/master1/etc/kubernetes/pki
ready() { curl -sf --cacert "$PKI/ca.crt" --resolve lb.kubexm.local:6443:127.0.0.41 https://lb.kubexm.local:6443/readyz; }
await_daemon kube-apiserver "$apiserver" "$WORK/apiserver.log" ready
for check in "serving certificate: /etc/kubernetes/pki/apiserver.crt verifies against /etc/kubernetes/pki/ca.crt" \
  "the serving certificate is valid for lb.kubexm.local" \
  "etcd client: /etc/kubernetes/pki/apiserver-etcd-client.crt verifies against /etc/kubernetes/pki/etcd/ca.crt" \
  "the service-account key /etc/kubernetes/pki/sa.pub is the public half of /etc/kubernetes/pki/sa.key"; do
  grep -qF "check ok: $check" "$WORK/apiserver.log" || { cat "$WORK/apiserver.log"; fail "the apiserver did not check: $check"; }
done
grep -q "etcd is healthy at https://127.0.0.31:2379" "$WORK/apiserver.log" || fail "the apiserver did not reach etcd"
pass "kube-apiserver checked its certificates, reached the real etcd over TLS and answers /readyz through lb.kubexm.local"

on_node master1 "$WORK/controller-manager.log" "$(exec_start "$(unit master1 kube-controller-manager controller-manager)")"
on_node master1 "$WORK/scheduler.log" "$(exec_start "$(unit master1 kube-scheduler scheduler)")"

# The first master's action, as node.yaml has it: the real kubectl applies the bootstrap objects.
apply=$(python3 -c 'import sys, yaml; n = yaml.safe_load(open(sys.argv[1]))
print(" ".join(" ".join(a["run"]) for p in n["phases"] for a in p.get("after", []) if a["name"] == "apply-bootstrap"))' \
  "$NODES/master1/node.yaml")
[[ $apply == "kubectl "* ]] || fail "master1's node.yaml has no apply-bootstrap action (got '$apply')"
on_node master1 "$WORK/apply.log" "$apply"
wait "${pids[-1]}" || { cat "$WORK/apply.log"; fail "kubectl apply of the bootstrap objects failed"; }
[ "$(grep -c ' created$' "$WORK/apply.log")" = 5 ] || { cat "$WORK/apply.log"; fail "kubectl did not create the 5 bootstrap objects"; }
token_id=$(sed -n 's/^  token-id: "\(.*\)"/\1/p' "$NODES/master1/etc/kubernetes/addons/kubexm-bootstrap.yaml")
ectl() {
  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.31:2379 --cacert="$epki/ca.crt" \
    --cert="$PKI/apiserver-etcd-client.crt" --key="$PKI/apiserver-etcd-client.key" "$@"
}
ectl get --keys-only --prefix /registry/ >"$WORK/keys.out"
grep -qx "/registry/secrets/kube-system/bootstrap-token-$token_id" "$WORK/keys.out" ||
  { cat "$WORK/keys.out"; fail "the bootstrap token's Secret is not in etcd"; }
pass "the real kubectl applied the 5 bootstrap objects ($apply); etcd holds them"

# worker1 joins by TLS bootstrap; the container runtime's socket is a listener of the test's.
python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); time.sleep(600)' \
  "$WORK/cri.sock" &
pids+=($!)
kubelet=$(exec_start "$(unit worker1 kubelet kubelet)")
on_node worker1 "$WORK/kubelet.log" "${kubelet//unix:\/\/\/run\/containerd\/containerd.sock/unix://$WORK/cri.sock}"
kubectl_admin() { "$WORK/bin/kubectl" --kubeconfig "$NODES/master1/etc/kubernetes/admin.conf" --server https://127.0.0.41:6443 "$@"; }
for _ in $(seq 100); do
  kubectl_admin get nodes -o json >"$WORK/nodes.json" 2>/dev/null && grep -q '"name": "worker1"' "$WORK/nodes.json" && break
  sleep 0.2
done
grep -q '"name": "worker1"' "$WORK/nodes.json" || { cat "$WORK/kubelet.log" "$WORK/controller-manager.log" "$WORK/nodes.json"; kubectl_admin get nodes -o json; fail "worker1 did not register"; }
client=$WORK/state/worker1/var-up/lib/kubelet/pki/kubelet-client-current.pem
[ -L "$client" ] || fail "worker1's kubelet keeps no kubelet-client-current.pem"
client=$(dirname "$client")/$(basename "$(readlink "$client")") # the link is absolute, as on the host
openssl verify -CAfile "$PKI/ca.crt" "$client" >/dev/null || fail "worker1's client certificate does not verify against the cluster CA"
subject=$(openssl x509 -in "$client" -noout -subject -nameopt RFC2253)
[ "$subject" = "subject=CN=system:node:worker1,O=system:nodes" ] || fail "worker1's client certificate is $subject"
grep -q "approved and signed CSR node-csr-.* from system:bootstrap:$token_id for system:node:worker1 (ClusterRoleBinding kubexm:node-autoapprove-bootstrap)" \
  "$WORK/controller-manager.log" || { cat "$WORK/controller-manager.log"; fail "the controller-manager did not approve worker1's request"; }
pass "worker1's kubelet bootstrapped with the token: request approved through kubexm:node-autoapprove-bootstrap, certificate $subject signed by the cluster CA; node registered"

# The token is refused once its Secret is gone (what ./install finish does).
token=$(sed -n 's/^  token-secret: "\(.*\)"/\1/p' "$NODES/master1/etc/kubernetes/addons/kubexm-bootstrap.yaml")
status() { curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token_id.$token" \
  --resolve lb.kubexm.local:6443:127.0.0.41 https://lb.kubexm.local:6443/apis/certificates.k8s.io/v1/certificatesigningrequests; }
[ "$(status)" = 200 ] || fail "the bootstrap token is refused while its Secret exists"
kubectl_admin -n kube-system delete secret "bootstrap-token-$token_id" >/dev/null || fail "kubectl delete of the token's Secret failed"
[ "$(status)" = 401 ] || fail "the bootstrap token is still accepted after its Secret was deleted"
pass "with the token's Secret deleted, the token is refused (401)"
