#!/usr/bin/env bash
# Every one of the 21 deployments (docs/site.md) renders (kubexm-builder site -o DIR), and what it
# renders passes the programs that will read it on site: haproxy -c, nginx -t, keepalived
# -t, systemd-analyze verify of every unit with its drop-ins, openssl verify of every
# certificate a node gets, kubectl config view of every kubeconfig. Each node has the files
# of its roles; a second run changes nothing; a host taken out of the site loses its files.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topologies.sh"
shopt -s extglob

for tool in haproxy nginx keepalived systemd-analyze openssl kubectl; do
  command -v "$tool" >/dev/null || fail "$tool is missing (tools/install-deps.sh installs it)"
done

has() { [ -e "$1" ] || fail "$(basename "$(dirname "$(dirname "$1")")")... lacks ${1#"$WORK"/}"; }
hasnt() { [ ! -e "$1" ] || fail "${1#"$WORK"/} should not be there"; }
contains() { grep -qF -- "$2" "$1" || fail "${1#"$WORK"/} lacks '$2'"; }

# The units of a node with its drop-ins, as systemd reads them. The bundle's own binaries
# (/usr/local/bin) are not on this machine; any other complaint is a failure.
verify_units() { # NODE-DIR
  local units=$1/usr/lib/systemd/system names=()
  [ -d "$units" ] || return 0
  for unit in "$units"/*.service "$units"/*.timer "$units"/*.service.d; do
    [ -e "$unit" ] || continue
    unit=$(basename "$unit")
    names+=("${unit%.d}")
  done
  mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)
  SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify "${names[@]}" >"$WORK/verify.out" 2>&1 || true
  local line command complaints=0
  while IFS= read -r line; do
    command=$(sed -n 's/^.*: Command \(\/[^ ]*\) is not executable: No such file or directory$/\1/p' <<<"$line")
    # A binary of the bundle, or a script the node's own files hold.
    if [[ $command == /usr/local/bin/+([a-z-]) ]] || { [ -n "$command" ] && [ -x "$1$command" ]; }; then
      continue
    fi
    echo "$line"
    complaints=$((complaints + 1))
  done <"$WORK/verify.out"
  [ "$complaints" = 0 ] || fail "systemd-analyze verify of ${1#"$WORK"/}: ${names[*]}"
  VERIFIED_UNITS=$((VERIFIED_UNITS + ${#names[@]}))
}

verify_certs() { # NODE-DIR SITE-DIR
  local pki=$1/etc/kubernetes/pki crt ca sum
  [ -d "$pki" ] || return 0
  for crt in $(cd "$pki" && find . -name '*.crt' ! -name 'ca.crt' ! -name 'front-proxy-ca.crt'); do
    case $crt in
      ./etcd/* | ./apiserver-etcd-client.crt) ca=$2/pki/etcd/ca.crt ;;
      ./front-proxy-client.crt) ca=$2/pki/front-proxy-ca.crt ;;
      *) ca=$2/pki/ca.crt ;;
    esac
    # Nodes share most certificates: each distinct one is verified once.
    sum=$(cat "$ca" "$pki/$crt" | sha256sum | cut -c1-64)
    [ -z "${VERIFIED[$sum]:-}" ] || continue
    openssl verify -CAfile "$ca" "$pki/$crt" >/dev/null || fail "${pki#"$WORK"/}/$crt does not verify against $ca"
    VERIFIED[$sum]=1
    VERIFIED_CERTS=$((VERIFIED_CERTS + 1))
  done
  for key in $(cd "$pki" && find . -name '*.key'); do
    [ "$(stat -c %a "$pki/$key")" = 600 ] || fail "${pki#"$WORK"/}/$key is not 0600"
  done
}

verify_kubeconfig() { # FILE SERVER
  local server sum
  sum=$(cat "$1" - <<<"$2" | sha256sum | cut -c1-64)
  [ -z "${VERIFIED[$sum]:-}" ] || return 0
  VERIFIED[$sum]=1
  server=$(kubectl config view --kubeconfig "$1" --raw -o jsonpath='{.clusters[0].cluster.server}') ||
    fail "kubectl cannot read ${1#"$WORK"/}"
  [ "$server" = "$2" ] || fail "${1#"$WORK"/} points at $server, not $2"
  kubectl config view --kubeconfig "$1" --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
    base64 -d >"$WORK/kc-ca.crt"
  if kubectl config view --kubeconfig "$1" --raw -o jsonpath='{.users[0].user.client-certificate-data}' |
    base64 -d >"$WORK/kc-client.crt" && [ -s "$WORK/kc-client.crt" ]; then
    openssl verify -CAfile "$WORK/kc-ca.crt" "$WORK/kc-client.crt" >/dev/null ||
      fail "the client certificate of ${1#"$WORK"/} does not verify against its CA"
  fi
  VERIFIED_KUBECONFIGS=$((VERIFIED_KUBECONFIGS + 1))
}

verify_node() { # SITE-DIR NODE ITEM
  local node=$1/nodes/$2 item=$3 k8s etcd masters mode type
  read -r k8s etcd masters mode type <<<"${KUBEXM_TOPOLOGIES[$item]}"
  has "$node/node.yaml"
  contains "$node/node.yaml" "deployment: $(deployment_id "$item")"
  local roles
  roles=$(sed -n 's/^roles: \[\(.*\)\]/\1/p' "$node/node.yaml")
  verify_units "$node"
  verify_certs "$node" "$1"
  for conf in "$node"/etc/kubernetes/*.conf; do
    [ -e "$conf" ] || continue
    case $(basename "$conf") in
      controller-manager.conf | scheduler.conf) verify_kubeconfig "$conf" https://127.0.0.1:6443 ;;
      *) verify_kubeconfig "$conf" "https://lb.kubexm.local:$([ "$mode" = external ] && echo 8443 || echo 6443)" ;;
    esac
  done
  for cfg in "$node"/etc/kubexm/haproxy/haproxy.cfg; do
    [ -e "$cfg" ] || continue
    haproxy -c -q -f "$cfg" || fail "haproxy -c rejects ${cfg#"$WORK"/}"
    VERIFIED_LB=$((VERIFIED_LB + 1))
  done
  for conf in "$node"/etc/kubexm/nginx/nginx.conf; do
    [ -e "$conf" ] || continue
    nginx -t -q -c "$conf" -e /dev/stderr || fail "nginx -t rejects ${conf#"$WORK"/}"
    VERIFIED_LB=$((VERIFIED_LB + 1))
  done
  # The runtimes' files: no containerd 2 or CRI-O here to read them, so Python's TOML and
  # JSON parsers do, and the settings that matter are checked.
  python3 - "$node" <<'PY' || fail "the runtime configuration of ${node#"$WORK"/} is wrong"
import json, pathlib, sys, tomllib
node = pathlib.Path(sys.argv[1])
for path in node.rglob("*.toml"):
    config = tomllib.loads(path.read_text())
    if path.name == "config.toml":
        assert config["version"] == 3, path
        images = config["plugins"]["io.containerd.cri.v1.images"]
        assert images["pinned_images"]["sandbox"].startswith("registry.k8s.io/pause:"), path
        assert images["registry"]["config_path"] == "/etc/containerd/certs.d", path
        runc = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
        assert runc["options"]["SystemdCgroup"] is True, path
    elif path.name == "hosts.toml":
        assert config["server"].startswith("https://") and "https://registry.site:5000" in config["host"], path
for path in node.rglob("*.conf"):
    if "crio.conf.d" in str(path) or "registries.conf.d" in str(path):
        config = tomllib.loads(path.read_text())
        if "crio.conf.d" in str(path):
            assert config["crio"]["runtime"]["cgroup_manager"] == "systemd", path
for path in node.rglob("daemon.json"):
    config = json.loads(path.read_text())
    assert config["exec-opts"] == ["native.cgroupdriver=systemd"], path
PY
  if [ -e "$node/etc/keepalived/keepalived.conf" ]; then
    # keepalived checks that its health-check script is there and executable, so it reads the
    # node's /etc/keepalived in a mount namespace of its own.
    unshare -m sh -c "mount --bind '$node/etc/keepalived' /etc/keepalived &&
      keepalived -t -f /etc/keepalived/keepalived.conf" >"$WORK/keepalived.out" 2>&1 ||
      { cat "$WORK/keepalived.out"; fail "keepalived -t rejects ${node#"$WORK"/}/etc/keepalived/keepalived.conf"; }
    ! grep -q "not found\|Unknown keyword" "$WORK/keepalived.out" || { cat "$WORK/keepalived.out"; fail "keepalived complains"; }
    VERIFIED_LB=$((VERIFIED_LB + 1))
  fi

  # The files of its roles, and none of the others'.
  local units=$node/usr/lib/systemd/system
  if [[ $roles == *master* || $roles == *worker* ]]; then
    has "$units/kubelet.service"
    has "$node/etc/sysctl.d/99-kubexm.conf"
    has "$node/etc/modules-load.d/kubexm.conf"
  else
    hasnt "$units/kubelet.service"
  fi
  if [[ $roles == *master* && $k8s == kubexm ]]; then
    for c in apiserver controller-manager scheduler; do has "$units/kube-$c.service.d/kubexm-$c.conf"; done
    has "$node/etc/kubernetes/admin.conf"
    contains "$units/kube-apiserver.service.d/kubexm-apiserver.conf" "--audit-log-maxage=30"
    contains "$units/kubelet.service.d/kubexm-kubelet.conf" "--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"
    # systemd would read a lone % as a specifier.
    contains "$units/kubelet.service.d/kubexm-kubelet.conf" "--eviction-hard=memory.available<5%%"
    # The control plane starts before the kubelet that joins through it.
    sed -n 's/^ *services: \[\(.*\)\]/\1/p' "$node/node.yaml" | grep -q "kube-apiserver.*kubelet" ||
      fail "$2 starts its kubelet before its apiserver: $(grep services "$node/node.yaml")"
  else
    hasnt "$units/kube-apiserver.service"
  fi
  if [[ $roles == *master* && $k8s == kubeadm ]]; then
    has "$node/etc/kubernetes/kubeadm-config.yaml"
    if [ "$2" = master1 ]; then
      contains "$node/etc/kubernetes/kubeadm-config.yaml" "kind: InitConfiguration"
      contains "$node/etc/kubernetes/kubeadm-config.yaml" "audit-log-maxage"
      if [ "$etcd" = kubeadm ]; then
        contains "$node/etc/kubernetes/kubeadm-config.yaml" "  local:"
      else
        contains "$node/etc/kubernetes/kubeadm-config.yaml" "https://10.20.0.31:2379"
      fi
    else
      contains "$node/etc/kubernetes/kubeadm-config.yaml" "controlPlane:"
    fi
    has "$units/k8s-certs-renew.timer"
  fi
  if [[ $roles == *etcd* && $etcd == kubexm ]]; then
    has "$units/etcd.service.d/kubexm-etcd.conf"
    # Every member starts in the etcd phase, whatever else the host is.
    python3 -c 'import sys, yaml; p = yaml.safe_load(open(sys.argv[1]))["phases"]; assert any(x["phase"] == 2 and "etcd" in x["services"] for x in p), p' \
      "$node/node.yaml" || fail "$2 does not start etcd in phase 2"
    contains "$units/etcd.service.d/kubexm-etcd.conf" "--initial-cluster=etcd1=https://10.20.0.31:2380"
    has "$units/backup-etcd.timer"
  else
    hasnt "$units/etcd.service"
  fi
  if [[ $roles == *lb* ]]; then
    has "$node/etc/keepalived/keepalived.conf"
    contains "$node/etc/keepalived/keepalived.conf" "10.20.0.100/24 dev eth0"
  fi
  if [[ $mode == internal && $roles == worker ]]; then
    if [ "$k8s" = kubeadm ]; then
      has "$node/etc/kubernetes/manifests/kube-$type.yaml"
    else
      has "$units/$type.service.d/kubexm-$type.conf"
    fi
    contains "$node/node.yaml" "{address: 127.0.0.1, names: [lb.kubexm.local]}"
  fi
  if [[ $mode == kube-vip && $roles == *master* && $k8s == kubeadm ]]; then
    contains "$node/etc/kubernetes/kubeadm-config.yaml" "ignorePreflightErrors: [DirAvailable--etc-kubernetes-manifests]"
  fi
  if [[ $mode == kube-vip && $roles == *master* ]]; then
    has "$node/etc/kubernetes/manifests/kube-vip.yaml"
    contains "$node/etc/kubernetes/manifests/kube-vip.yaml" "value: 10.20.0.100"
  fi
  if [[ $roles == worker && $k8s == kubeadm ]]; then
    contains "$node/etc/kubernetes/kubeadm-config.yaml" "apiServerEndpoint: 10.20.0.11:6443"
    contains "$node/etc/kubernetes/kubeadm-config.yaml" "caCertHashes"
  fi
  VERIFIED_NODES=$((VERIFIED_NODES + 1))
}

declare -A VERIFIED=() # sha256 of what was verified (with its CA or server)
VERIFIED_UNITS=0 VERIFIED_CERTS=0 VERIFIED_KUBECONFIGS=0 VERIFIED_LB=0 VERIFIED_NODES=0
for item in $KUBEXM_TOPOLOGY_ITEMS; do
  site=$WORK/site-$item.yaml out=$WORK/out-$item
  write_topology "$item" "$site"
  "$BUILDER" site -f "$site" --check --json >"$WORK/check.json" 2>"$WORK/check.err" ||
    { cat "$site" "$WORK/check.err"; fail "$item: the site is refused"; }
  [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"])' <"$WORK/check.json")" = "$(deployment_id "$item")" ] ||
    fail "$item: site --check says $(cat "$WORK/check.json")"
  # RSA keys for half the deployments, ECDSA for the others (quicker, and both are supported).
  algorithm=$([ $((${item#9.} % 2)) = 0 ] && echo rsa || echo ecdsa)
  "$BUILDER" site -f "$site" -o "$out" --key-algorithm "$algorithm" >"$WORK/render.out" 2>&1 ||
    { cat "$WORK/render.out"; fail "$item: site -o failed"; }
  # The golden file set: every node's files with their modes (KUBEXM_UPDATE_GOLDEN=1 rewrites it).
  golden=$KUBEXM_SOURCE/tests/site/golden/$item.txt
  (cd "$out" && find nodes kubeconfigs -type f -printf '%m %p\n' | LC_ALL=C sort) >"$WORK/files.txt"
  if [ "${KUBEXM_UPDATE_GOLDEN:-}" = 1 ]; then
    mkdir -p "$(dirname "$golden")" && cp "$WORK/files.txt" "$golden"
  fi
  diff -u "$golden" "$WORK/files.txt" || fail "$item: the rendered files differ from $golden (KUBEXM_UPDATE_GOLDEN=1 rewrites it)"
  for kc in "$out"/kubeconfigs/*.conf; do
    case $(basename "$kc") in
      controller-manager.conf | scheduler.conf) verify_kubeconfig "$kc" https://127.0.0.1:6443 ;;
      *) verify_kubeconfig "$kc" "https://lb.kubexm.local:$(grep -q 'mode: external' "$site" && echo 8443 || echo 6443)" ;;
    esac
  done
  for node in $(cd "$out/nodes" && ls); do
    verify_node "$out" "$node" "$item"
  done
  "$BUILDER" site -f "$site" -o "$out" --key-algorithm "$algorithm" >"$WORK/again.out" 2>&1 || { cat "$WORK/again.out"; fail "$item: second run failed"; }
  grep -q "files; nothing changed" "$WORK/again.out" || { cat "$WORK/again.out"; fail "$item: the second run changed files"; }
done
pass "21 deployments: the golden file set of each; $VERIFIED_NODES nodes, $VERIFIED_UNITS units verified by systemd-analyze, $VERIFIED_CERTS distinct certificates by openssl, $VERIFIED_KUBECONFIGS distinct kubeconfigs by kubectl, $VERIFIED_LB load balancer configs by haproxy, nginx and keepalived; second runs change nothing"

# A worker taken out of the site: its directory goes, the others stay as they were.
out=$WORK/out-9.11
grep -v "name: worker2" "$WORK/site-9.11.yaml" >"$WORK/fewer.yaml"
"$BUILDER" site -f "$WORK/fewer.yaml" -o "$out" >"$WORK/fewer.out" 2>&1 || { cat "$WORK/fewer.out"; fail "re-render failed"; }
[ ! -e "$out/nodes/worker2" ] || fail "worker2's files are left after it left the site"
grep -q "written, [1-9][0-9]* removed" "$WORK/fewer.out" || { cat "$WORK/fewer.out"; fail "no removal reported"; }
has "$out/nodes/worker1/node.yaml"
pass "a host taken out of the site loses its rendered files"

# A tampered rendered file is rendered again; nothing else is touched.
echo "Bogus=1" >>"$out/nodes/master1/usr/lib/systemd/system/kube-apiserver.service.d/kubexm-apiserver.conf"
"$BUILDER" site -f "$WORK/fewer.yaml" -o "$out" >"$WORK/mend.out" 2>&1 || { cat "$WORK/mend.out"; fail "re-render failed"; }
grep -q "files: 1 written, 0 removed" "$WORK/mend.out" || { cat "$WORK/mend.out"; fail "the tampered file was not the only one written"; }
! grep -q Bogus "$out/nodes/master1/usr/lib/systemd/system/kube-apiserver.service.d/kubexm-apiserver.conf" ||
  fail "the tampered drop-in is still tampered"
pass "a changed rendered file is put back, and only it"
