# shellcheck shell=bash
# Booted test hosts with no network but their own LAN; sourced after tests/lib.sh, never run.
#
# Each host is a Debian 12 root (debootstrap minbase + systemd, cached: ensure_boot_root)
# booted by `systemd-nspawn -b` in a network namespace of its own, with one interface, eth0,
# on a bridge in another namespace the test makes: the hosts reach each other and nothing
# else (no route out, no address outside those namespaces). The bundle's directory is
# bind-mounted read-only at /media/kubexm, as a USB stick would be.
#
#   lan_up                        the private LAN (a bridge in its own namespace)
#   host_boot NAME ADDRESS DIR    boots host NAME with ADDRESS/24 on eth0 and DIR at /media/kubexm
#   host_run NAME CMD...          runs CMD inside the booted host (nsenter into all its namespaces)
#   host_pid NAME                 its PID 1, as this machine sees it
#   host_stop NAME                powers it off
#   hosts_down                    stops every host, deletes the namespaces (also on EXIT)
#   host_snapshot NAME OUT        path, mode and SHA-256 of the host's files that an install may touch

source "$KUBEXM_SOURCE/tests/packages/deb-fixture.sh"

E2E_ID="kx$$"
# More systemd-nspawn options for every host (tools/e2e-upstream.sh gives a real kubelet what
# it needs in a container); none for the stand-ins.
HOST_NSPAWN_OPTIONS=("${HOST_NSPAWN_OPTIONS[@]}")
LAN="$E2E_ID-lan"
declare -A HOST_NSPAWN=() HOST_NS=()
HOST_COUNT=0

e2e_need() {
  local tool
  for tool in systemd-nspawn nsenter ip; do
    command -v "$tool" >/dev/null || fail "$tool is missing (tools/install-deps.sh installs it)"
  done
}

lan_up() {
  e2e_need
  ip netns add "$LAN"
  ip -n "$LAN" link add br0 type bridge
  ip -n "$LAN" link set br0 up
}

host_boot() {
  local name=$1 address=$2 dir=$3 root="$WORK/hosts/$1" ns="$E2E_ID-$HOST_COUNT"
  HOST_COUNT=$((HOST_COUNT + 1))
  mkdir -p "$WORK/hosts"
  ensure_boot_root "$root"
  echo "$name" >"$root/etc/hostname" # systemd takes the host name from it at boot
  ip netns add "$ns"
  HOST_NS[$name]=$ns
  ip link add "$ns-h" type veth peer name "$ns-b"
  ip link set "$ns-h" netns "$ns"
  ip link set "$ns-b" netns "$LAN"
  ip -n "$LAN" link set "$ns-b" master br0 up
  ip -n "$ns" link set "$ns-h" name eth0
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # CAP_NET_ADMIN: keepalived adds the VIP; without it, VRRP runs but the address never comes.
  systemd-nspawn -q --register=no --keep-unit -D "$root" --machine="$name" --hostname="$name" \
    --network-namespace-path="/run/netns/$ns" --capability=CAP_NET_ADMIN \
    --bind-ro="$dir:/media/kubexm" "${HOST_NSPAWN_OPTIONS[@]}" -b >"$WORK/hosts/$name.console" 2>&1 &
  HOST_NSPAWN[$name]=$!
  local _ state
  for _ in $(seq 120); do
    if state=$(host_run "$name" systemctl is-system-running 2>/dev/null) || [ "$state" = degraded ]; then
      return 0
    fi
    kill -0 "${HOST_NSPAWN[$name]}" 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$WORK/hosts/$name.console" >&2
  fail "host $name did not boot (state: ${state:-none})"
}

host_pid() {
  pgrep -P "${HOST_NSPAWN[$1]}" | head -n1
}

host_run() {
  local name=$1 pid
  shift
  pid=$(host_pid "$name")
  [ -n "$pid" ] || { echo "host $name is not running" >&2; return 1; }
  nsenter -t "$pid" -a -- "$@"
}

host_stop() {
  local name=$1 pid=${HOST_NSPAWN[$1]:-} _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true # nspawn powers the container off
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "HOST_NSPAWN[$name]"
}

hosts_down() {
  local name ns
  for name in "${!HOST_NSPAWN[@]}"; do
    host_stop "$name"
  done
  for ns in "${HOST_NS[@]}" "$LAN"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap 'hosts_down; stop_mirror; rm -rf "$WORK"' EXIT

# host_snapshot NAME OUT: "mode sha256 path" of every file under the places an install
# writes (and their neighbours), with what changes by itself on a running host left out.
host_snapshot() {
  # shellcheck disable=SC2016 # the host's shell expands it
  host_run "$1" sh -c 'find /etc /usr/local /usr/lib/systemd /opt /var/lib/kubelet /var/lib/kube-proxy \
      -xdev \( -type f -o -type l \) 2>/dev/null | grep -v -e "^/etc/machine-id$" -e "^/etc/ld.so.cache$" \
      -e "^/etc/resolv.conf$" -e "^/etc/systemd/system/.*\.wants/systemd-" | sort |
    while read -r f; do printf "%s %s %s\n" "$(stat -c %a "$f")" "$( [ -L "$f" ] && readlink "$f" || sha256sum <"$f" | cut -c1-16)" "$f"; done' >"$2"
}
