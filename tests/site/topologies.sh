# Sourced: write_topology ITEM FILE writes a small site file for the deployment numbered ITEM
# in docs/site.md's table (9.3 to 9.23). The sites vary what the deployments leave open (runtime, arches, a registry
# mirror, node-local DNS) so that every template is rendered by one of them.
# shellcheck shell=bash

# ITEM -> "kubernetes-type etcd-type masters lb-mode lb-type"
declare -A KUBEXM_TOPOLOGIES=(
  [9.3]="kubeadm kubeadm 1 - -" [9.4]="kubexm kubexm 1 - -" [9.5]="kubeadm kubexm 1 - -"
  [9.6]="kubeadm kubeadm 3 - -" [9.7]="kubexm kubexm 3 - -" [9.8]="kubeadm kubexm 3 - -"
  [9.9]="kubeadm kubeadm 3 internal haproxy" [9.10]="kubeadm kubexm 3 internal haproxy"
  [9.11]="kubexm kubexm 3 internal haproxy" [9.12]="kubeadm kubeadm 3 internal nginx"
  [9.13]="kubeadm kubexm 3 internal nginx" [9.14]="kubexm kubexm 3 internal nginx"
  [9.15]="kubeadm kubeadm 3 kube-vip -" [9.16]="kubeadm kubexm 3 kube-vip -" [9.17]="kubexm kubexm 3 kube-vip -"
  [9.18]="kubeadm kubeadm 3 external kubexm-kh" [9.19]="kubeadm kubeadm 3 external kubexm-kn"
  [9.20]="kubeadm kubexm 3 external kubexm-kh" [9.21]="kubeadm kubexm 3 external kubexm-kn"
  [9.22]="kubexm kubexm 3 external kubexm-kh" [9.23]="kubexm kubexm 3 external kubexm-kn"
)
KUBEXM_TOPOLOGY_ITEMS="9.3 9.4 9.5 9.6 9.7 9.8 9.9 9.10 9.11 9.12 9.13 9.14 9.15 9.16 9.17 9.18 9.19 9.20 9.21 9.22 9.23"

# deployment_id ITEM: the deployment's name as docs/site.md gives it, from its shape.
deployment_id() {
  local k8s etcd masters mode type lb
  read -r k8s etcd masters mode type <<<"${KUBEXM_TOPOLOGIES[$1]}"
  case $mode in -) lb=no-lb ;; kube-vip) lb=kube-vip ;; *) lb=$mode-$type ;; esac
  echo "$k8s/$([ "$etcd" = kubeadm ] && echo stacked || echo kubexm)-etcd/$([ "$masters" = 1 ] && echo single-master || echo several-masters)/$lb"
}

write_topology() { # ITEM FILE
  local item=$1 file=$2 k8s etcd masters mode type runtime version i
  read -r k8s etcd masters mode type <<<"${KUBEXM_TOPOLOGIES[$item]}"
  local minor=$(((${item#9.} % 5) + 30)) # every supported minor, 1.30 to 1.34
  version=$(sed -n 's/^kubernetes: //p' "$KUBEXM_SOURCE/manifests/kubernetes-1.$minor.yaml")
  case $item in 9.4 | 9.11 | 9.19) runtime=docker ;; 9.7 | 9.16) runtime=cri-o ;; *) runtime=containerd ;; esac
  {
    echo "name: t${item/./-}"
    echo "kubernetes: {type: $k8s, version: $version, extraArgs: {apiserver: {audit-log-maxage: \"30\"}, kubelet: {max-pods: \"150\", eviction-hard: \"memory.available<5%\"}}}"
    echo "etcd: {type: $etcd}"
    echo "runtime: $runtime"
    echo "network: {plugin: calico, nodelocaldns: $([ $((${item#9.} % 2)) = 0 ] && echo true || echo false)}"
    [ $((${item#9.} % 3)) = 0 ] && echo "registry: {mirror: registry.site:5000}"
    case $mode in
      -) echo "loadbalancer: {enabled: false}" ;;
      internal) echo "loadbalancer: {enabled: true, mode: internal, type: $type}" ;;
      kube-vip) echo "loadbalancer: {enabled: true, mode: kube-vip, vip: 10.20.0.100, interface: eth0}" ;;
      external) echo "loadbalancer: {enabled: true, mode: external, type: $type, vip: 10.20.0.100, interface: eth0, port: 8443}" ;;
    esac
    echo "hosts:"
    if [ "$mode" = external ]; then
      echo "  - {name: lb1, address: 10.20.0.5/24, roles: [lb]}"
      echo "  - {name: lb2, address: 10.20.0.6/24, roles: [lb]}"
    fi
    for ((i = 1; i <= masters; i++)); do
      if [ "$etcd" = kubeadm ]; then
        echo "  - {name: master$i, address: 10.20.0.1$i/24, roles: [master, etcd]}"
      else
        echo "  - {name: master$i, address: 10.20.0.1$i/24, roles: [master]}"
        echo "  - {name: etcd$i, address: 10.20.0.3$i/24, roles: [etcd]}"
      fi
    done
    echo "  - {name: worker1, address: 10.20.0.21/24, arch: amd64, roles: [worker]}"
    echo "  - {name: worker2, address: 10.20.0.22/24, arch: arm64, roles: [worker]}"
  } >"$file"
}
