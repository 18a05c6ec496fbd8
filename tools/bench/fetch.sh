#!/usr/bin/env bash
# Benchmarks kubexm-builder fetch against curl doing the same downloads, in one run, from
# the same loopback mirror (tools/mirror-server.py, sendfile):
#   cold fetch   kubexm-builder fetch --lock -j 4   vs  curl --parallel --parallel-max 4 (no checking)
#   cold fetch   (the same)                         vs  curl --parallel ... then sha256sum -c (checked)
#   cache hit    kubexm-builder fetch, everything cached, vs its own cold fetch
# over a lock of --files incompressible files totalling --size. Runs alternate between the
# sides and the median of --runs is reported, with each side's peak RSS.
#
#   tools/bench/fetch.sh [--size 1G] [--files 8] [--runs 3] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

size=1G
files=8
runs=3
build=build/release
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--size 1G] [--files 8] [--runs 3] [--build DIR]" >&2; exit 2 ;;
  esac
done
builder=$PWD/$build/bin/kubexm-builder
[ -x "$builder" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }

# A private tmpfs, so the VM disk's writeback does not decide the result.
work=/var/tmp/kubexm-bench-fetch
mkdir -p "$work"
if ! mountpoint -q "$work"; then
  mount -t tmpfs -o size=6G tmpfs "$work"
fi
trap 'kill $server 2>/dev/null || true; cd /; umount "$work" 2>/dev/null || true' EXIT
cd "$work"
rm -rf ./*

bytes=$(numfmt --from=iec "$size")
each=$((bytes / files))
mkdir -p mirror/bench.example/release
for i in $(seq "$files"); do
  head -c "$each" /dev/urandom >"mirror/bench.example/release/file-$i"
done
python3 "$OLDPWD/tools/mirror-server.py" mirror --port-file port 2>/dev/null &
server=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
port=$(cat port)

# The lock: each file a plain-file artifact with its size and digest.
python3 - "$files" "$each" <<'EOF' >bench.lock
import hashlib, json, sys
files, size = int(sys.argv[1]), int(sys.argv[2])
artifacts = []
for i in range(1, files + 1):
    digest = hashlib.sha256(open(f"mirror/bench.example/release/file-{i}", "rb").read()).hexdigest()
    artifacts.append({"arch": "amd64", "checksum_url": "", "component": f"file-{i}", "kind": "file",
                      "members": [{"install": f"file-{i}", "path": "", "sha256": digest, "size": size}],
                      "pin": "none", "sha256": digest, "size": size,
                      "url": f"https://bench.example/release/file-{i}", "version": "1.0.0"})
bundle = {"name": "bench", "version": "1", "kubernetes": "1.32.10", "arches": ["amd64"], "os_profiles": ["x"],
          "roles": ["master"], "images": {}}
print(json.dumps({"kind": "kubexm-lock", "format": 1, "bundle": bundle, "artifacts": artifacts}, indent=2))
EOF
: >curl.urls
: >SUMS
for i in $(seq "$files"); do
  printf 'url = "http://127.0.0.1:%s/bench.example/release/file-%s"\noutput = "curl/file-%s"\n' "$port" "$i" "$i" >>curl.urls
  printf '%s  file-%s\n' "$(sha256sum "mirror/bench.example/release/file-$i" | cut -d' ' -f1)" "$i" >>SUMS
done
mirror_arg=(--mirror "https://bench.example=http://127.0.0.1:$port/bench.example")

# seconds_and_rss CMD...: runs CMD under /usr/bin/time, prints "SECONDS RSS_KIB".
seconds_and_rss() {
  /usr/bin/time -f '%e %M' -o time.out "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  cat time.out
}
kubexm_cold() { rm -rf cache; seconds_and_rss "$builder" -q fetch --lock bench.lock --cache cache -j 4 "${mirror_arg[@]}"; }
kubexm_warm() { seconds_and_rss "$builder" -q fetch --lock bench.lock --cache cache -j 4 "${mirror_arg[@]}"; }
curl_plain() { rm -rf curl; mkdir curl; seconds_and_rss curl -sS --fail --parallel --parallel-max 4 --config curl.urls; }
curl_checked() {
  rm -rf curl; mkdir curl
  seconds_and_rss sh -c 'curl -sS --fail --parallel --parallel-max 4 --config curl.urls && cd curl && sha256sum -c --quiet ../SUMS'
}

declare -A results
for run in $(seq "$runs"); do
  # Rotate which side goes first.
  order=(kubexm_cold curl_plain curl_checked kubexm_warm)
  shift_by=$(( (run - 1) % 3 ))
  order=("${order[@]:$shift_by:3}" "${order[@]:0:$shift_by}" kubexm_warm)
  for side in "${order[@]}"; do
    results[$side]+="$($side) "
    sync
  done
done

python3 - "${results[kubexm_cold]}" "${results[curl_plain]}" "${results[curl_checked]}" "${results[kubexm_warm]}" \
  "$bytes" "$files" "$runs" <<'EOF'
import statistics, sys
def parse(text):
    values = text.split()
    seconds = [float(v) for v in values[0::2]]
    rss = [int(v) for v in values[1::2]]
    return statistics.median(seconds), max(rss) / 1024
cold, plain, checked, warm = (parse(t) for t in sys.argv[1:5])
size, files, runs = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
gib = size / 2**30
print(f"fetch of {files} files, {gib:.2f} GiB, loopback mirror, median of {runs}")
print("| operation | kubexm | standard tool | ratio | kubexm peak RSS | standard peak RSS |")
print("|---|---|---|---|---|---|")
def row(name, a, b):
    print(f"| {name} | {a[0]:.2f} s ({gib / a[0]:.2f} GiB/s) | {b[0]:.2f} s ({gib / b[0]:.2f} GiB/s) | "
          f"{a[0] / b[0]:.2f}x | {a[1]:.0f} MiB | {b[1]:.0f} MiB |")
row("cold fetch (verified, cached) vs curl --parallel", cold, plain)
row("cold fetch vs curl --parallel + sha256sum -c", cold, checked)
print(f"| cache hit vs cold fetch | {warm[0]:.3f} s | {cold[0]:.2f} s | {warm[0] / cold[0]:.3f}x | {warm[1]:.0f} MiB | {cold[1]:.0f} MiB |")
EOF
