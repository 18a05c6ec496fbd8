# Helpers for the shell tests; sourced, never run. Every test gets a private temp dir that
# is removed on exit, and fails with a message naming what was expected.
set -euo pipefail

: "${KUBEXM_BIN:?KUBEXM_BIN must point at the directory holding kubexm-builder and install}"
: "${KUBEXM_SOURCE:?KUBEXM_SOURCE must point at the source tree}"
BUILDER="$KUBEXM_BIN/kubexm-builder"
INSTALLER="$KUBEXM_BIN/install"
GEN_TREE="$KUBEXM_SOURCE/tools/gen-tree.py"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubexm-it-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

pass() {
  echo "ok: $*"
}

# expect_failure CODE PATTERN CMD...: CMD must exit with CODE and print PATTERN (grep -E) on stderr.
expect_failure() {
  local code=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  if [ "$rc" -ne "$code" ]; then
    cat "$WORK/stderr" >&2
    fail "'$*' exited $rc, expected $code"
  fi
  if ! grep -qE -- "$pattern" "$WORK/stderr"; then
    cat "$WORK/stderr" >&2
    fail "'$*' did not say /$pattern/"
  fi
}

# pack_demo TREE OUT [gen-tree args...]: generates a tree and packs it quietly.
pack_demo() {
  local tree=$1 out=$2
  shift 2
  python3 "$GEN_TREE" "$tree" "$@"
  SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q pack --dir "$tree" -o "$out" >/dev/null
}
