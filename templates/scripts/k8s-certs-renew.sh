#!/bin/bash
# Renews the kubeadm-managed certificates of {{node_name}} when the earliest expires within
# 30 days, then restarts the control plane's static pods; rendered by kubexm.
set -o errexit -o nounset -o pipefail

kubeadm=/usr/local/bin/kubeadm
# The node's own runtime: on a docker node containerd's socket answers too, without the pods.
crictl=(/usr/local/bin/crictl --runtime-endpoint {{cri_socket}})

earliest_expiry() {
  local earliest="" f end
  for f in /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt; do
    case "$f" in */ca.crt|*/front-proxy-ca.crt) continue ;; esac
    [ -e "$f" ] || continue
    end=$(date -d "$(openssl x509 -enddate -noout -in "$f" | cut -d= -f2)" +%s)
    if [ -z "$earliest" ] || [ "$end" -lt "$earliest" ]; then earliest=$end; fi
  done
  echo "${earliest:-0}"
}

days_left=$(( ($(earliest_expiry) - $(date +%s)) / 86400 ))
echo "k8s-certs-renew: the earliest control plane certificate expires in ${days_left} days"
if [ "$days_left" -ge 30 ]; then
  exit 0
fi
echo "k8s-certs-renew: renewing"
"$kubeadm" certs renew all
"${crictl[@]}" pods --namespace kube-system --name 'kube-scheduler-*|kube-controller-manager-*|kube-apiserver-*|etcd-*' -q \
  | xargs --no-run-if-empty "${crictl[@]}" rmp -f
if [ -d /root/.kube ]; then
  install -m 0600 /etc/kubernetes/admin.conf /root/.kube/config
fi
echo "k8s-certs-renew: waiting for the apiserver"
until printf "" 2>/dev/null >/dev/tcp/127.0.0.1/6443; do sleep 1; done
"$kubeadm" certs check-expiration
