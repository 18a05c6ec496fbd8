#!/usr/bin/env bash
# Benchmarks `./install --role=worker` on a fresh booted host with no network against the
# same work done by hand on another fresh host, in one run, step by step:
#   extract   installer: verifies the whole bundle, writes this host's part
#             by hand:   zstd -dc kubexm-dist-*.tar.zst | tar -x (the whole archive)
#   packages  installer: apt-get from the bundle's repository, with its checks
#             by hand:   apt-get update of that repository alone (a file: source), then
#                        apt-get install --no-install-recommends of the worker's packages
#   binaries  install -m 0755 of the same files into /usr/local/bin and /opt/cni/bin
#   files     cp of the node's files to their places
#   os-init   swapoff -a, systemd-modules-load restarted, sysctl --system
#   services  systemctl daemon-reload, enable --now containerd, enable kubelet
#   images    tar of the bundle's OCI layout | ctr -n k8s.io images import -
# The installer's own figures are its per-step times (its --json report); the installer's
# peak RSS is read from /proc/PID/status (VmHWM) through the whole role. The join, which
# waits for an apiserver no host here has, and the health check are not timed.
# Both hosts are the same cached Debian 12 root (tests/e2e/hosts.sh), booted afresh per run.
#
#   tools/bench/role.sh [--runs 3] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

source tools/bench/common.sh
source tests/e2e/hosts.sh
[ "$runs" = 5 ] && runs=3 # a run boots two hosts and installs twice: three are plenty

export KUBEXM_E2E=$WORK/e2e KUBEXM_E2E_KEEP_ARCHIVE=1
bash tests/e2e/bundles.sh >"$WORK/bundles.log" 2>&1 || { cat "$WORK/bundles.log"; fail "building the bundles failed"; }
BUNDLE_DIR=$KUBEXM_E2E/kh
ARCHIVE=$(ls "$BUNDLE_DIR"/kubexm-dist-*.tar.zst)
now() { date +%s.%N; }

# installer_run HOST OUT: the role, its --json report in OUT.json, the peak RSS (KiB) in OUT.rss.
installer_run() {
  local host=$1 out=$2 pid= hwm=0 value
  setsid nsenter -t "$(host_pid "$host")" -a -- /media/kubexm/install --role=worker --wait 1s --json \
    >"$out.json" 2>"$out.err" &
  local runner=$!
  while kill -0 "$runner" 2>/dev/null; do
    [ -n "$pid" ] || pid=$(pgrep -s "$runner" -x install | head -n1 || true)
    if [ -n "$pid" ] && value=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$value" ]; then
      hwm=$value
    fi
    sleep 0.05
  done
  wait "$runner" || true
  grep -q '"outcome": "failed"' "$out.json" && grep -q '"step": "images"' "$out.json" ||
    { tail -20 "$out.err"; fail "the installer did not get through the images step"; }
  echo "$hwm" >"$out.rss"
}

# by_hand HOST OUT: the same steps done by hand; "step seconds" lines in OUT.
by_hand() {
  local host=$1 out=$2 root="$WORK/hosts/$1" t0
  : >"$out"
  step() { # step NAME CMD...
    local name=$1
    shift
    t0=$(now)
    "$@" >>"$out.log" 2>&1 || { tail -20 "$out.log"; fail "by hand, $name failed: $*"; }
    echo "$name $(echo "$(now) - $t0" | bc)" >>"$out"
  }
  mkdir -p "$root/var/lib/manual"
  step extract sh -c "zstd -dc '$ARCHIVE' | tar -x -C '$root/var/lib/manual'"
  local repo=/var/lib/manual/packages/debian/12/amd64 names
  names=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["roles"]["worker"]["requested"]))' \
    "$root$repo/kubexm-packages.json")
  echo "deb [trusted=yes] file:$repo ./" >"$root/var/lib/manual/kubexm.list"
  local apt=(apt-get -q -o Dir::Etc::sourcelist=/var/lib/manual/kubexm.list -o Dir::Etc::sourceparts=-)
  # shellcheck disable=SC2086
  step packages host_run "$host" env DEBIAN_FRONTEND=noninteractive sh -c \
    "${apt[*]} update && ${apt[*]} install -y --no-install-recommends $names"
  local files=()
  while read -r target; do
    files+=("$(cd "$root/var/lib/manual" && ls -d bin/amd64/*/*/"$(basename "$target")" | head -n1)" "$target")
  done <"$WORK/targets.txt"
  step binaries host_run "$host" sh -c "cd /var/lib/manual && while [ \$# -gt 0 ]; do install -m 0755 \"\$1\" \"\$2\"; shift 2; done" sh "${files[@]}"
  step files host_run "$host" sh -c "cd /var/lib/manual/site/nodes/worker1 && for d in etc usr var; do [ -d \$d ] && cp -r \$d /; done; true"
  step os-init host_run "$host" sh -c "swapoff -a; systemctl restart systemd-modules-load.service; sysctl --system || true"
  step services host_run "$host" sh -c "systemctl daemon-reload && systemctl enable --now containerd && systemctl enable kubelet"
  step images host_run "$host" sh -c "tar -C /var/lib/manual/images/oci -cf - . | ctr -n k8s.io images import -"
}

lan_up
for run in $(seq "$runs"); do
  host_boot "bench-i$run" 10.77.0.21 "$BUNDLE_DIR"
  installer_run "bench-i$run" "$WORK/installer-$run"
  # The binaries the installer placed, for the same work by hand.
  host_run "bench-i$run" cat /var/lib/kubexm/journal.json | python3 -c '
import json, sys
for change in json.load(sys.stdin)["changes"]:
    if change.get("step") == "binaries" and change.get("kind") == "file":
        print(change["path"])' >"$WORK/targets.txt"
  host_stop "bench-i$run"
  host_boot "bench-m$run" 10.77.0.21 "$BUNDLE_DIR"
  by_hand "bench-m$run" "$WORK/manual-$run"
  host_stop "bench-m$run"
  rm -rf "$WORK/hosts/bench-i$run" "$WORK/hosts/bench-m$run"
done

python3 - "$WORK" "$runs" <<'EOF'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
steps = ["extract", "packages", "binaries", "files", "os-init", "services", "images"]
installer = {s: [] for s in steps}
manual = {s: [] for s in steps}
rss = []
for run in range(1, runs + 1):
    report = json.load(open(f"{work}/installer-{run}.json"))
    for step in report["steps"]:
        if step["step"] in installer:
            installer[step["step"]].append(step["seconds"])
    for line in open(f"{work}/manual-{run}"):
        name, seconds = line.split()
        manual[name].append(float(seconds))
    rss.append(int(open(f"{work}/installer-{run}.rss").read()))
print(f"worker role on a fresh booted host, median of {runs}:")
print(f"  {'step':<10} {'installer':>10} {'by hand':>10} {'ratio':>7}")
total_i = total_m = 0.0
for step in steps:
    i = statistics.median(installer[step]) if installer[step] else 0.0
    m = statistics.median(manual[step]) if manual[step] else 0.0
    total_i += i
    total_m += m
    ratio = f"{i / m:6.2f}x" if m > 0.01 else "     -"
    print(f"  {step:<10} {i:9.2f}s {m:9.2f}s {ratio}")
print(f"  {'total':<10} {total_i:9.2f}s {total_m:9.2f}s {total_i / total_m:6.2f}x")
print(f"  installer peak RSS (VmHWM), largest of {runs}: {max(rss) / 1024:.1f} MiB")
EOF
