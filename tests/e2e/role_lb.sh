#!/usr/bin/env bash
# Two booted hosts of an external load balancer run `./install --role=lb` at the same time,
# for kubexm-kh (keepalived + haproxy) and then kubexm-kn (keepalived + nginx): the proxy and
# keepalived are active on both, the VIP is on exactly one, and when the proxy stops there,
# real VRRP on the private LAN moves the VIP to the other within seconds.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
VIP=10.77.0.100

has_vip() { host_run "$1" ip -4 -o addr show dev eth0 | grep -q " $VIP/"; }

# holder LB1 LB2: the one host that has the VIP, or fails.
holder() {
  local holders=()
  has_vip "$1" && holders+=("$1")
  has_vip "$2" && holders+=("$2")
  [ ${#holders[@]} = 1 ] || return 1
  echo "${holders[0]}"
}

lan_up
for lb in kh kn; do
  proxy=$([ $lb = kh ] && echo haproxy || echo nginx)
  a=$lb-lb1 b=$lb-lb2
  host_boot "$a" 10.77.0.5 "$KUBEXM_E2E/$lb"
  host_boot "$b" 10.77.0.6 "$KUBEXM_E2E/$lb"
  host_run "$a" /media/kubexm/install --role=lb >"$WORK/$a.out" 2>"$WORK/$a.err" &
  first=$!
  host_run "$b" /media/kubexm/install --role=lb >"$WORK/$b.out" 2>"$WORK/$b.err" ||
    { tail -30 "$WORK/$b.err"; fail "install --role=lb failed on $b"; }
  wait "$first" || { tail -30 "$WORK/$a.err"; fail "install --role=lb failed on $a"; }
  for host in "$a" "$b"; do
    for unit in "$proxy" keepalived; do
      [ "$(host_run "$host" systemctl is-active "$unit")" = active ] || fail "$unit is not active on $host"
    done
    grep -q "^  health     checked    proxy on :6443 and :8081, keepalived active$" "$WORK/$host.out" ||
      { cat "$WORK/$host.out"; fail "$host's health step"; }
  done
  for _ in $(seq 40); do owner=$(holder "$a" "$b") && break; sleep 0.5; done
  [ -n "${owner:-}" ] || fail "$lb: the VIP $VIP is not on exactly one lb host"
  other=$([ "$owner" = "$a" ] && echo "$b" || echo "$a")
  pass "$lb: both lb hosts installed at once; $proxy and keepalived active on both; the VIP is on $owner only"

  started=$SECONDS
  host_run "$owner" systemctl stop "$proxy"
  moved=
  for _ in $(seq 60); do
    if [ "$(holder "$a" "$b" 2>/dev/null)" = "$other" ]; then moved=1; break; fi
    sleep 0.5
  done
  [ -n "$moved" ] || fail "$lb: the VIP did not move to $other when $proxy stopped on $owner"
  pass "$lb: $proxy stopped on $owner; keepalived moved the VIP to $other in $((SECONDS - started)) s"
  host_stop "$a"
  host_stop "$b"
done
