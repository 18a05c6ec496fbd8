# Sourced by the benchmarks that take [--runs N] [--build DIR]: parses them into `runs` and
# `build`, points the test helpers at that build (KUBEXM_BIN, KUBEXM_SOURCE) and sources
# tests/lib.sh. Run from the source tree's root.
runs=5
build=build/release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--runs 5] [--build DIR]" >&2; exit 2 ;;
  esac
done
export KUBEXM_BIN=$PWD/$build/bin KUBEXM_SOURCE=$PWD
[ -x "$KUBEXM_BIN/kubexm-builder" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
source tests/lib.sh
