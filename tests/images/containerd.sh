# A real containerd for the image tests, private to the test: its root, state and socket
# live under a directory of the test's, and it runs with no network (unshare -n), as on an
# air-gapped host. Sourced after tests/lib.sh.

# start_containerd DIR: starts containerd; sets CONTAINERD_ADDRESS and CONTAINERD_PID, and
# stops it on exit.
start_containerd() {
  local dir=$1
  mkdir -p "$dir/root" "$dir/state"
  CONTAINERD_ADDRESS=$dir/containerd.sock
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$CONTAINERD_ADDRESS"
[ttrpc]
  address = "$dir/containerd.ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
TOML
  unshare -n containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  trap 'stop_containerd; stop_registry 2>/dev/null || true; stop_mirror; rm -rf "$WORK"' EXIT
  local _
  for _ in $(seq 200); do
    if ctr --address "$CONTAINERD_ADDRESS" version >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$CONTAINERD_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$dir/containerd.log" >&2
  fail "containerd did not start"
}

stop_containerd() {
  if [ -n "${CONTAINERD_PID:-}" ]; then
    kill "$CONTAINERD_PID" 2>/dev/null || true
    wait "$CONTAINERD_PID" 2>/dev/null || true
    CONTAINERD_PID=
  fi
}

# containerd_images: "REF DIGEST" for each image in namespace k8s.io.
containerd_images() {
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images ls | awk 'NR > 1 { print $1, $3 }'
}
