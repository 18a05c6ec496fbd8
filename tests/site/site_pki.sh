#!/usr/bin/env bash
# kubexm-builder site -o DIR makes the site's PKI, checked with the openssl program: every
# certificate verifies against its CA; the apiserver's names and addresses, the etcd
# members' and the usages are right; keys are 0600 and never printed; validity follows the
# cluster type; a second run keeps everything, --rotate makes it anew, ECDSA on request.
source "$(dirname "$0")/../lib.sh"

site="$KUBEXM_SOURCE/manifests/examples/site-external.yaml"
"$BUILDER" site -f "$site" -o "$WORK/out" >"$WORK/first.out" 2>&1 || { cat "$WORK/first.out"; fail "site -o failed"; }
PKI=$WORK/out/pki
grep -q "PKI in $PKI: 20 made, 0 kept" "$WORK/first.out" || { cat "$WORK/first.out"; fail "no PKI summary"; }
! grep -q "PRIVATE KEY" "$WORK/first.out" || fail "a private key was printed"

verify() { # CA CERT...
  local ca=$1
  shift
  openssl verify -CAfile "$PKI/$ca.crt" "${@/#/$PKI/}" >/dev/null || fail "$* do not verify against $ca"
}
verify ca apiserver.crt apiserver-kubelet-client.crt
verify front-proxy-ca front-proxy-client.crt
verify etcd/ca apiserver-etcd-client.crt etcd/healthcheck-client.crt etcd/server-master1.crt etcd/peer-master3.crt
for key in $(cd "$PKI" && find . -name '*.key'); do
  [ "$(stat -c %a "$PKI/$key")" = 600 ] || fail "$key is not 0600"
done
pass "every certificate verifies against its CA; every key is 0600"

sans=$(openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName)
for name in DNS:kubernetes DNS:kubernetes.default.svc.cluster.local DNS:master2 "IP Address:10.96.0.1" \
  "IP Address:127.0.0.1" "IP Address:192.168.10.13" "IP Address:192.168.10.100" "IP Address:192.168.10.5"; do
  grep -q "$name\(,\|$\)" <<<"$sans" || fail "the apiserver certificate lacks $name: $sans"
done
openssl x509 -in "$PKI/etcd/server-master2.crt" -noout -ext subjectAltName | grep -q "IP Address:192.168.10.12" ||
  fail "master2's etcd certificate lacks its address"
openssl x509 -in "$PKI/apiserver.crt" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication" ||
  fail "the apiserver certificate is not for servers"
openssl x509 -in "$PKI/apiserver-kubelet-client.crt" -noout -subject | grep -q "O = kubeadm:cluster-admins" ||
  fail "the kubelet client certificate is not in kubeadm:cluster-admins"
openssl x509 -in "$PKI/ca.crt" -noout -ext basicConstraints | grep -q "CA:TRUE" || fail "ca.crt is not a CA"
openssl pkey -pubin -in "$PKI/sa.pub" -noout || fail "sa.pub is not a public key"
pass "the apiserver's SANs name every master, the VIP, the lb hosts and the service IP; usages and subjects are right"

days_left() { # CERT: whole days until it expires
  echo $(( ($(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
}
[ "$(days_left "$PKI/apiserver.crt")" -ge 364 ] && [ "$(days_left "$PKI/apiserver.crt")" -le 366 ] ||
  fail "a kubeadm cluster's apiserver certificate is not valid for a year"
[ "$(days_left "$PKI/ca.crt")" -ge 3649 ] || fail "the CA is not valid for ten years"
"$BUILDER" -q site -f "$KUBEXM_SOURCE/manifests/examples/site-kube-vip.yaml" -o "$WORK/kubexm" >/dev/null
[ "$(days_left "$WORK/kubexm/pki/apiserver.crt")" -ge 3649 ] || fail "a kubexm cluster's certificates are not valid for ten years"
pass "validity: CAs 10 years; a kubeadm cluster's certificates 1 year, a kubexm cluster's 10"

before=$(cd "$PKI" && find . -type f | sort | xargs sha256sum)
"$BUILDER" site -f "$site" -o "$WORK/out" >"$WORK/again.out" 2>&1 || fail "the second run failed"
grep -q "all 20 keys and certificates kept; nothing changed" "$WORK/again.out" || { cat "$WORK/again.out"; fail "no 'kept'"; }
[ "$before" = "$(cd "$PKI" && find . -type f | sort | xargs sha256sum)" ] || fail "the second run changed the PKI"
rm "$PKI/apiserver.crt"
"$BUILDER" site -f "$site" -o "$WORK/out" >"$WORK/one.out" 2>&1 || fail "the run after a removal failed"
grep -q "1 made, 19 kept" "$WORK/one.out" || { cat "$WORK/one.out"; fail "the missing certificate was not the only one made"; }
cmp -s <(grep ' ./ca.key$' <<<"$before" | cut -c1-64) <(sha256sum "$PKI/ca.key" | cut -c1-64) || fail "the CA key changed"
"$BUILDER" site -f "$site" -o "$WORK/out" --rotate >"$WORK/rotate.out" 2>&1 || fail "--rotate failed"
grep -q "20 made, 0 kept" "$WORK/rotate.out" || { cat "$WORK/rotate.out"; fail "--rotate did not make everything anew"; }
! cmp -s <(grep ' ./ca.key$' <<<"$before" | cut -c1-64) <(sha256sum "$PKI/ca.key" | cut -c1-64) || fail "--rotate kept the CA key"
verify ca apiserver.crt
pass "a second run keeps every key; a removed certificate is the only one made again; --rotate makes all anew"

# A master added to the site: the apiserver certificate lacks its name and address, so it
# is made again (and the new master's etcd certificates made); the rest is kept.
sed 's/^  - {name: master3, address: 192.168.10.13\/24, roles: \[master, etcd\]}/&\n  - {name: master4, address: 192.168.10.14\/24, roles: [master, etcd]}/' \
  "$site" >"$WORK/grown.yaml"
grep -q master4 "$WORK/grown.yaml" || fail "the test could not add master4 to $site"
"$BUILDER" site -f "$WORK/grown.yaml" -o "$WORK/out" >"$WORK/grown.out" 2>&1 || { cat "$WORK/grown.out"; fail "the grown site failed"; }
grep -q "PKI in $PKI: 3 made, 19 kept" "$WORK/grown.out" || { cat "$WORK/grown.out"; fail "not exactly the apiserver and master4's two were made"; }
openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName | grep -q "DNS:master4" || fail "the apiserver certificate lacks master4"
openssl x509 -in "$PKI/etcd/server-master4.crt" -noout -ext subjectAltName | grep -q "IP Address:0:0:0:0:0:0:0:1" ||
  fail "an etcd member's certificate lacks ::1, which kubeadm requires"
pass "a master added to the site: the apiserver certificate is made again with it, the rest is kept"

"$BUILDER" -q site -f "$site" -o "$WORK/ec" --key-algorithm ecdsa >/dev/null
openssl pkey -in "$WORK/ec/pki/apiserver.key" -noout -text | grep -q "NIST CURVE: P-256" || fail "not an ECDSA P-256 key"
openssl verify -CAfile "$WORK/ec/pki/ca.crt" "$WORK/ec/pki/apiserver.crt" >/dev/null || fail "the ECDSA chain does not verify"
pass "--key-algorithm ecdsa makes P-256 keys that verify"
