#!/usr/bin/env bash
# Benchmarks kubexm's pack, extract and verify against the standard tools doing the same
# work, in one run, on the same tree:
#   pack     kubexm-builder pack           vs  tar -I 'zstd -T0 -3' -cf
#   pack     (the same outputs by hand)    vs  sha256sum every file + tar/zstd + cat stub + sha256sum outputs
#   pack     (self-extracting)             vs  makeself --zstd --sha256
#   extract  install extract               vs  zstd -dc | tar -x
#   extract  ./install extract             vs  ./makeself.run --noexec --target (checks its SHA-256 first)
#   verify   install verify                vs  zstd -dc >/dev/null (decompression alone, no checking)
# and the peak RSS of each (/usr/bin/time -v). Runs alternate between the two sides and the
# median of --runs is reported. By default everything happens on a private tmpfs so that
# disk writeback (which swings wall times 2x on a shared VM disk) does not decide the
# result; --disk DIR measures on a real filesystem instead.
#
#   tools/bench/pack-extract.sh [--size 2G] [--runs 3] [--disk DIR] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

size=2G
runs=3
disk=""
build=build/release
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--size 2G] [--runs 3] [--disk DIR] [--build DIR]" >&2; exit 2 ;;
  esac
done

builder=$PWD/$build/bin/kubexm-builder
installer=$PWD/$build/bin/install
[ -x "$builder" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }

if [ -n "$disk" ]; then
  work=$disk/kubexm-bench
  mkdir -p "$work"
else
  work=/var/tmp/kubexm-bench
  mkdir -p "$work"
  mountpoint -q "$work" || mount -t tmpfs -o size=16G kubexm-bench "$work"
  trap 'cd / && umount "$work"' EXIT
fi
cd "$work"
# Temporary files (makeself writes a whole archive there) stay off the disk too.
mkdir -p tmp
export TMPDIR=$work/tmp

echo "bench: generating a $size tree in $work" >&2
rm -rf tree
python3 "$OLDPWD/tools/gen-tree.py" tree --size "$size" >/dev/null
files=$(find tree -type f | wc -l)
bytes=$(du -sb tree | cut -f1)

# measure NAME CMD...: appends "NAME seconds rss_kib" to results after a clean slate.
measure() {
  local name=$1
  shift
  rm -rf out x sums.txt
  sync
  /usr/bin/time -f "%e %M" -o time.txt "$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; exit 1; }
  echo "$name $(cat time.txt)" >>results
}

pack_kubexm="'$builder' -q pack --dir tree -o out --source-date-epoch 1700000000"
pack_tar="mkdir -p out && tar -I 'zstd -T0 -3' -cf out/a.tar.zst -C tree ."
# What pack produces, made with coreutils: SHA256SUMS of the tree, the archive, the
# self-extracting file, SHA256SUMS of the outputs.
pack_by_hand="mkdir -p out && (cd tree && find . -type f -print0 | sort -z | xargs -0 -P2 -n 4096 sha256sum >../sums.txt) \
  && tar -I 'zstd -T0 -3' -cf out/a.tar.zst -C tree . && cat '$installer' out/a.tar.zst >out/install \
  && (cd out && sha256sum a.tar.zst install >SHA256SUMS)"
# The standard self-extracting archive: one SHA-256 of the archive, no per-file digests.
pack_makeself="mkdir -p out && makeself --quiet --zstd --complevel 3 --threads 0 --sha256 --nomd5 --nocrc tree out/install.run kubexm-dist true"

: >results
# The commands take turns at going first: on a VM the first run after a pause is often
# slower, and a fixed order would charge that to one side.
rotate() {
  local run=$1
  shift
  local steps=("$@") count=$#
  for i in $(seq 0 $((count - 1))); do
    local step=${steps[$(((i + run) % count))]}
    measure "${step%%|*}" sh -c "${step#*|}"
  done
}
for run in $(seq "$runs"); do
  rotate "$run" "pack.kubexm|$pack_kubexm" "pack.tar|$pack_tar" "pack.byhand|$pack_by_hand" \
    "pack.makeself|$pack_makeself"
done
sh -c "$pack_makeself" >/dev/null 2>&1 && mv out/install.run makeself.run

"$builder" -q pack --dir tree -o bundle --source-date-epoch 1700000000 >/dev/null
archive=$(ls bundle/kubexm-dist-*.tar.zst)
payload=$(stat -c %s "$archive")
for run in $(seq "$runs"); do
  rotate "$run" \
    "extract.kubexm|$installer -q --bundle $archive extract x" \
    "extract.tar|mkdir x && zstd -dc $archive | tar -x -C x" \
    "extract.self|$installer -q --bundle bundle/install extract x" \
    "extract.makeself|./makeself.run --quiet --noexec --target x" \
    "verify.kubexm|$installer -q --bundle bundle/install verify" \
    "verify.zstd|zstd -dc $archive >/dev/null"
done

median() { grep "^$1 " results | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peak() { grep "^$1 " results | awk '{print $3}' | sort -n | tail -1; }
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN {printf "%.2fx", a / b}'; }
mib() { awk -v k="$(peak "$1")" 'BEGIN {printf "%.0f MiB", k / 1024}'; }

cat <<EOF_TABLE
kubexm benchmark: $(numfmt --to=iec "$bytes") tree, $files files, payload $(numfmt --to=iec "$payload"), $(nproc) cores, median of $runs, on ${disk:-tmpfs}

| operation | kubexm | standard tool | ratio | kubexm peak RSS | standard peak RSS |
|---|---|---|---|---|---|
| pack vs tar+zstd -T0 -3 | $(median pack.kubexm) s | $(median pack.tar) s | $(ratio pack.kubexm pack.tar) | $(mib pack.kubexm) | $(mib pack.tar) |
| pack vs the same outputs by hand | $(median pack.kubexm) s | $(median pack.byhand) s | $(ratio pack.kubexm pack.byhand) | $(mib pack.kubexm) | $(mib pack.byhand) |
| extract+verify vs zstd -dc \| tar -x | $(median extract.kubexm) s | $(median extract.tar) s | $(ratio extract.kubexm extract.tar) | $(mib extract.kubexm) | $(mib extract.tar) |
| pack vs makeself --zstd --sha256 | $(median pack.kubexm) s | $(median pack.makeself) s | $(ratio pack.kubexm pack.makeself) | $(mib pack.kubexm) | $(mib pack.makeself) |
| self-extracting install vs makeself .run --noexec | $(median extract.self) s | $(median extract.makeself) s | $(ratio extract.self extract.makeself) | $(mib extract.self) | $(mib extract.makeself) |
| verify (all digests) vs zstd -dc >/dev/null | $(median verify.kubexm) s | $(median verify.zstd) s | $(ratio verify.kubexm verify.zstd) | $(mib verify.kubexm) | $(mib verify.zstd) |
EOF_TABLE
