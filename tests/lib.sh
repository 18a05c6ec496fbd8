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

# require_fixture PATH: PATH (relative to the source tree) is test data the repository carries;
# when it is missing, the test fails with one line saying so and how to get it back.
require_fixture() {
  [ -e "$KUBEXM_SOURCE/$1" ] ||
    fail "missing fixture $1: it is part of the repository; restore it with 'git checkout -- $1'"
  (cd "$KUBEXM_SOURCE/$1" 2>/dev/null && pwd) || echo "$KUBEXM_SOURCE/$1"
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

# await_daemon NAME PID LOG CMD...: waits (up to 20 s) until CMD succeeds while PID lives;
# otherwise shows the end of LOG and fails naming NAME.
await_daemon() {
  local name=$1 pid=$2 log=$3
  shift 3
  local _
  for _ in $(seq 200); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$log" >&2
  fail "$name did not start"
}

# stop_daemon PID: stops it and waits for it; nothing when PID is empty.
stop_daemon() {
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# pack_demo TREE OUT [gen-tree args...]: generates a tree and packs it quietly.
pack_demo() {
  local tree=$1 out=$2
  shift 2
  python3 "$GEN_TREE" "$tree" "$@"
  SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q pack --dir "$tree" -o "$out" >/dev/null
}

# --- the local upstream mirror (tools/make-mirror.py, tools/mirror-server.py) ---------------

# Fixtures that outlive a run: Debian packages and the mirror built from them.
FIXTURE_CACHE=${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test}
RELEASE="$KUBEXM_SOURCE/manifests/kubernetes-1.32.yaml"

# ensure_mirror: sets MIRROR_ROOT to a mirror of the 1.32 upstreams, building it when the
# script, the release file or the stand-in (kubexm-standin) changed since it was last built.
ensure_mirror() {
  mkdir -p "$FIXTURE_CACHE"
  local key standin="$KUBEXM_BIN/kubexm-standin"
  [ -x "$standin" ] || fail "$standin is missing: it is built with the tests (cmake --build)"
  key=$(cat "$KUBEXM_SOURCE/tools/make-mirror.py" "$RELEASE" "$standin" | sha256sum | cut -c1-16)
  MIRROR_ROOT="$FIXTURE_CACHE/mirror-$key"
  (
    flock 9
    if [ ! -f "$MIRROR_ROOT/checksums.yaml" ]; then
      python3 "$KUBEXM_SOURCE/tools/make-mirror.py" --release "$RELEASE" --out "$MIRROR_ROOT" \
        --debs "$FIXTURE_CACHE/debs" --standin "$standin" >&2
    fi
  ) 9>"$FIXTURE_CACHE/mirror.lock"
}

# start_mirror ROOT [server options...]: serves ROOT on 127.0.0.1; sets MIRROR_PORT and
# MIRRORS (the --mirror options that send every upstream host there). Requests are logged
# to $WORK/server.log.
start_mirror() {
  local root=$1
  shift
  stop_mirror
  rm -f "$WORK/port"
  python3 "$KUBEXM_SOURCE/tools/mirror-server.py" "$root" --port-file "$WORK/port" --log "$WORK/server.log" "$@" \
    2>"$WORK/server.err" &
  MIRROR_PID=$!
  for _ in $(seq 100); do
    [ -s "$WORK/port" ] && break
    sleep 0.05
  done
  [ -s "$WORK/port" ] || fail "the mirror server did not start: $(cat "$WORK/server.err")"
  MIRROR_PORT=$(cat "$WORK/port")
  MIRRORS=()
  local host
  for host in dl.k8s.io github.com get.helm.sh download.docker.com storage.googleapis.com; do
    MIRRORS+=(--mirror "https://$host=http://127.0.0.1:$MIRROR_PORT/$host")
  done
}

stop_mirror() {
  if [ -n "${MIRROR_PID:-}" ]; then
    kill "$MIRROR_PID" 2>/dev/null || true
    wait "$MIRROR_PID" 2>/dev/null || true
    MIRROR_PID=
  fi
}
trap 'stop_mirror; rm -rf "$WORK"' EXIT

# site_manifest OUT [extra yaml]: the demo manifest, plus the mirror's own digests as pins.
site_manifest() {
  local out=$1
  shift
  { cat "$KUBEXM_SOURCE/manifests/demo.yaml"; printf '%s\n' "$@"; cat "$MIRROR_ROOT/checksums.yaml"; } >"$out"
}

# binaries_manifest OUT [extra yaml]: the demo manifest without OS packages (the tests of
# binaries do not serve a distribution mirror).
binaries_manifest() {
  local out=$1
  shift
  site_manifest "$out" "packages: {closure: none}" "$@"
}
