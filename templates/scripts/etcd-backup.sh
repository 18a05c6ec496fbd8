#!/bin/bash
# Takes a snapshot of etcd member {{node_name}} of {{cluster_name}} and keeps the newest
# {{etcd_backups_kept}}; rendered by kubexm.
set -o errexit -o nounset -o pipefail

backups=/var/backups/kube_etcd
keep={{etcd_backups_kept}}
target="$backups/etcd-$(date +%Y-%m-%d-%H-%M-%S)"

mkdir -p "$target"
chmod 0700 "$backups"
ETCDCTL_API=3 /usr/local/bin/etcdctl \
  --endpoints=https://{{node_address}}:2379 \
  --cacert=/etc/kubernetes/pki/etcd/ca.crt \
  --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
  --key=/etc/kubernetes/pki/etcd/healthcheck-client.key \
  snapshot save "$target/snapshot.db"
echo "etcd-backup: $target/snapshot.db"

# The newest $keep backups stay; older ones go.
ls -1dt "$backups"/etcd-* | tail -n +$((keep + 1)) | xargs --no-run-if-empty rm -rf --
