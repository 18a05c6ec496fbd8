#!/usr/bin/env bash
# kubexm-builder site --check on the shipped examples (each a valid deployment of docs/site.md,
# named by its shape) and on a site with several mistakes (exit 2, every one with its line).
source "$(dirname "$0")/../lib.sh"

for example in single-master:kubeadm/stacked-etcd/single-master/no-lb \
  internal-haproxy:kubeadm/kubexm-etcd/several-masters/internal-haproxy \
  kube-vip:kubexm/kubexm-etcd/several-masters/kube-vip external:kubeadm/stacked-etcd/several-masters/external-kubexm-kh; do
  file="$KUBEXM_SOURCE/manifests/examples/site-${example%%:*}.yaml" id=${example#*:}
  "$BUILDER" site -f "$file" --check >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err"; fail "$file was refused"; }
  grep -q ": valid: one of the 21 deployments (docs/site.md): " "$WORK/out" && grep -qx "  deployment $id" "$WORK/out" ||
    { cat "$WORK/out"; fail "$file is not $id"; }
  ! grep -qi "seed\|item" "$WORK/out" || { cat "$WORK/out"; fail "$file: the report speaks of the design's numbering"; }
  "$BUILDER" site -f "$file" --check --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["valid"] and r["deployment"] == sys.argv[1], r' "$id" ||
    fail "$file: the JSON report is wrong"
done
pass "the four example sites are valid and name their deployments"

cat >"$WORK/bad.yaml" <<'YAML'
name: s
kubernetes: {type: kubexm, version: 1.32.10, podCIDR: 10.0.0.0/16}
etcd: {type: kubeadm}
loadbalancer: {enabled: true, mode: external, type: kubexm-kh, vip: 10.0.0.100, interface: eth0}
hosts:
  - {name: m1, address: 10.0.0.11/24, roles: [master]}
  - {name: m1, address: 10.0.0.12/24, roles: [master, chef]}
YAML
expect_failure 2 "line 7: hosts: m1: roles: 'chef' is not one of master, worker, etcd, lb" \
  "$BUILDER" site -f "$WORK/bad.yaml" --check
for pattern in "line 7: hosts: m1 is listed twice \(first at line 6\)" \
  "line 6: hosts: m1: address 10.0.0.11 is inside podCIDR 10.0.0.0/16" \
  "line 3: etcd: type: kubeadm runs etcd as kubeadm's static pods" \
  "line 4: loadbalancer: mode external needs hosts with the lb role"; do
  grep -qE "$pattern" "$WORK/stderr" || { cat "$WORK/stderr"; fail "not reported: /$pattern/"; }
done
pass "a site with five mistakes is refused with all of them, each with its line"
