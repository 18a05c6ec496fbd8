# An interrupted extraction leaves the target as it was; a killed one leaves only its
# marked staging directory, which the next run replaces and finishes.
source "$(dirname "$0")/../lib.sh"

pack_demo "$WORK/tree" "$WORK/out" --size 400M
install="$WORK/out/install"

# Wait until the staging directory has data in it, then signal.
start_and_signal() {
  local signal=$1
  "$install" -q extract "$WORK/target" >/dev/null 2>"$WORK/err" &
  local pid=$!
  for _ in $(seq 1 400); do
    [ -d "$WORK/.target.kubexm-staging/binaries" ] && break
    sleep 0.01
  done
  kill -"$signal" "$pid"
  local rc=0
  wait "$pid" || rc=$?
  echo "$rc"
}

rc=$(start_and_signal TERM)
[ "$rc" -eq 130 ] || fail "SIGTERM: exit $rc, expected 130 ($(cat "$WORK/err"))"
grep -q "interrupted" "$WORK/err" || fail "SIGTERM: no 'interrupted' message"
[ ! -e "$WORK/target" ] || fail "SIGTERM left a target behind"
[ ! -e "$WORK/.target.kubexm-staging" ] || fail "SIGTERM left the staging directory behind"
pass "SIGTERM: exit 130, target and staging absent"

rc=$(start_and_signal KILL)
[ "$rc" -eq 137 ] || fail "SIGKILL: exit $rc"
[ ! -e "$WORK/target" ] || fail "SIGKILL left a partial target"
[ -e "$WORK/.target.kubexm-staging/.kubexm-staging" ] || fail "SIGKILL should leave a marked staging directory"
pass "SIGKILL: no target, marked staging left"

"$install" -q extract "$WORK/target" >/dev/null || fail "the run after SIGKILL failed"
[ ! -e "$WORK/.target.kubexm-staging" ] || fail "staging not cleaned by the next run"
(cd "$WORK/target" && sha256sum -c --quiet SHA256SUMS) || fail "the resumed extraction does not verify"
pass "the next run replaces the staging directory and finishes"
