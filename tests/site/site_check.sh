#!/usr/bin/env bash
# kubexm-builder site --check on the shipped examples (each a valid deployment of seed 002,
# named by its item) and on a site with several mistakes (exit 2, every one with its line).
source "$(dirname "$0")/../lib.sh"

for example in single-master:9.3 internal-haproxy:9.10 kube-vip:9.17 external:9.18; do
  file="$KUBEXM_SOURCE/manifests/examples/site-${example%:*}.yaml"
  "$BUILDER" site -f "$file" --check >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err"; fail "$file was refused"; }
  grep -q ": valid: seed 002 item ${example#*:}: " "$WORK/out" || { cat "$WORK/out"; fail "$file is not item ${example#*:}"; }
  "$BUILDER" site -f "$file" --check --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["valid"] and r["topology"] == sys.argv[1], r' "${example#*:}" ||
    fail "$file: the JSON report is wrong"
done
pass "the four example sites are valid and name their seed 002 items"

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
