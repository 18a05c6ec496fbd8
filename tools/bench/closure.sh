#!/usr/bin/env bash
# Benchmarks the closure of the common package set (os-profiles/packages.yaml, role etcd)
# for debian-12 amd64 against the machine's real, full Debian 12 index (bookworm,
# bookworm-updates and bookworm-security: about 64,000 packages), in one run:
#   kubexm-builder closure   (warm cache: InRelease fetched anew, the cached Packages files
#                             re-hashed, loaded into libsolv, base set and role solved)
#   apt-cache depends --recurse --no-recommends ... of the same names, on apt's own lists
# Runs alternate between the sides; the median of --runs is reported with each side's peak
# RSS (/usr/bin/time).
#
#   tools/bench/closure.sh [--runs 5] [--build build/release]
set -euo pipefail
cd "$(dirname "$0")/../.."

source tools/bench/common.sh
source tests/packages/fixtures.sh
start_package_mirrors

printf 'name: bench\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\n' >"$WORK/m.yaml"
printf 'components: [kubectl]\nroles: [etcd]\n' >>"$WORK/m.yaml"
kubexm=("$BUILDER" -q closure -f "$WORK/m.yaml" --cache "$WORK/cache" "${MIRRORS[@]}" --json)
"${kubexm[@]}" >"$WORK/closure.json" # fills the cache
names=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[0]['roles']['etcd']['requested']))" "$WORK/closure.json")
count=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))[0]['roles']['etcd']['install']))" "$WORK/closure.json")
# shellcheck disable=SC2206
apt=(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances
  $names)
apt_count=$("${apt[@]}" | grep -cv '^ ' || true)

measure() { # measure NAME CMD...: appends "seconds rss_kib" to $WORK/NAME
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>&1
  cat "$WORK/time" >>"$WORK/$name"
}
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then
    measure kubexm "${kubexm[@]}"
    measure apt "${apt[@]}"
  else
    measure apt "${apt[@]}"
    measure kubexm "${kubexm[@]}"
  fi
done

median() { sort -n -k"$2" "$WORK/$1" | awk -v k="$2" '{v[NR]=$k} END {print v[int((NR+1)/2)]}'; }
k_time=$(median kubexm 1)
a_time=$(median apt 1)
k_rss=$(median kubexm 2)
a_rss=$(median apt 2)
echo "closure of the common set ($names), debian-12 amd64, full Debian 12 index, median of $runs:"
printf '  kubexm-builder closure   %6.2f s  %6d MiB  (%d packages over the base set)\n' "$k_time" $((k_rss / 1024)) "$count"
printf '  apt-cache depends -r     %6.2f s  %6d MiB  (%d names, every alternative)\n' "$a_time" $((a_rss / 1024)) "$apt_count"
awk -v k="$k_time" -v a="$a_time" 'BEGIN {printf "  ratio                    %6.2fx\n", k / a}'
