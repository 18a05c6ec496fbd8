# shellcheck shell=bash
# The ten-host site the booted-host tests install, and how its hosts are started; sourced
# (after tests/lib.sh and tests/e2e/hosts.sh), never run. tools/e2e-upstream.sh uses the same
# site and steps with the real upstream binaries.
#
#   e2e_site KIND FILE         writes the site for KIND: kh (a kubeadm cluster, keepalived +
#                              haproxy), kn (the same with nginx), kx (a kubexm cluster, its
#                              control plane under systemd, keepalived + haproxy)
#   e2e_manifest KIND SITE     prints a bundle manifest for that site (components and pins are
#                              the caller's to add)
#   e2e_boot_all BUNDLE-DIR    boots every host of the site with the bundle at /media/kubexm
#   e2e_install_all WAIT       runs every host's `install --role=ROLE --wait WAIT` at the same
#                              moment, as an admin with ten terminals would; fails naming the
#                              hosts whose install failed, with the end of their logs

E2E_HOSTS=(lb1 lb2 etcd1 etcd2 etcd3 master1 master2 master3 worker1 worker2)
declare -A E2E_ADDRESS=([lb1]=10.77.0.5 [lb2]=10.77.0.6 [etcd1]=10.77.0.31 [etcd2]=10.77.0.32 [etcd3]=10.77.0.33
  [master1]=10.77.0.11 [master2]=10.77.0.12 [master3]=10.77.0.13 [worker1]=10.77.0.21 [worker2]=10.77.0.22)
e2e_role() { case $1 in lb*) echo lb ;; etcd*) echo etcd ;; master*) echo master ;; *) echo worker ;; esac; }

e2e_site() { # KIND FILE
  local kind=$1 cluster lb host
  cluster=$([ "$kind" = kx ] && echo kubexm || echo kubeadm)
  lb=kubexm-$([ "$kind" = kn ] && echo kn || echo kh)
  {
    echo "name: e2e-$kind"
    echo "kubernetes: {type: $cluster, version: 1.32.10}"
    echo "etcd: {type: kubexm}"
    echo "network: {plugin: calico}"
    echo "loadbalancer: {enabled: true, mode: external, type: $lb, vip: 10.77.0.100, interface: eth0, port: 6443}"
    echo "hosts:"
    for host in "${E2E_HOSTS[@]}"; do
      echo "  - {name: $host, address: ${E2E_ADDRESS[$host]}/24, os: debian-12, roles: [$(e2e_role "$host")]}"
    done
  } >"$2"
}

e2e_manifest() { # KIND SITE
  printf 'name: e2e-%s\nversion: 1.0.0\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\n' "$1"
  printf 'roles: [master, worker, etcd, lb]\nsite: %s\n' "$2"
}

e2e_boot_all() { # BUNDLE-DIR
  local host
  for host in "${E2E_HOSTS[@]}"; do
    host_boot "$host" "${E2E_ADDRESS[$host]}" "$1"
  done
}

e2e_install_all() { # WAIT
  local host failed=()
  declare -A pids=()
  for host in "${E2E_HOSTS[@]}"; do
    host_run "$host" /media/kubexm/install --role="$(e2e_role "$host")" --wait "$1" >"$WORK/$host.out" 2>"$WORK/$host.err" &
    pids[$host]=$!
  done
  for host in "${E2E_HOSTS[@]}"; do
    wait "${pids[$host]}" || failed+=("$host")
  done
  [ ${#failed[@]} -eq 0 ] && return 0
  for host in "${failed[@]}"; do
    echo "--- $host"
    tail -30 "$WORK/$host.err"
    host_run "$host" sh -c 'tail -n 20 /var/log/kubexm-standin/*.log' 2>/dev/null || true
  done
  fail "install failed on ${failed[*]}"
}
