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
  await_daemon containerd "$CONTAINERD_PID" "$dir/containerd.log" ctr --address "$CONTAINERD_ADDRESS" version
}

stop_containerd() {
  stop_daemon "${CONTAINERD_PID:-}"
  CONTAINERD_PID=
}

# containerd_images: "REF DIGEST" for each image in namespace k8s.io.
containerd_images() {
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images ls | awk 'NR > 1 { print $1, $3 }'
}
