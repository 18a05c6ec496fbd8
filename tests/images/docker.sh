# A real docker daemon for the image tests, private to the test: its data, exec root and
# socket under a directory of the test's, vfs storage (no overlay needed), no bridge, no
# iptables, and no network (unshare -n), as on an air-gapped host. Sourced after lib.sh.

# start_docker DIR: starts dockerd; sets DOCKER_ADDRESS and DOCKER_PID, stops it on exit.
start_docker() {
  local dir=$1
  mkdir -p "$dir/data" "$dir/exec"
  DOCKER_ADDRESS=$dir/docker.sock
  # Its own containerd namespaces, so that a containerd of the machine is left alone.
  unshare -n dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
    --host "unix://$DOCKER_ADDRESS" --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --containerd-namespace kubexm-test --containerd-plugins-namespace kubexm-test-plugins >"$dir/dockerd.log" 2>&1 &
  DOCKER_PID=$!
  trap 'stop_docker; stop_registry 2>/dev/null || true; stop_mirror; rm -rf "$WORK"' EXIT
  await_daemon dockerd "$DOCKER_PID" "$dir/dockerd.log" docker --host "unix://$DOCKER_ADDRESS" version
}

stop_docker() {
  stop_daemon "${DOCKER_PID:-}"
  DOCKER_PID=
}

# docker_id REF: the image ID docker has under REF (the config's digest), or nothing.
docker_id() {
  docker --host "unix://$DOCKER_ADDRESS" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}
