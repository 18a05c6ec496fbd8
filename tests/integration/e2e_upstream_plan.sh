#!/usr/bin/env bash
# tools/e2e-upstream.sh, the booted-host cluster test with the real upstream binaries, cannot
# run here (no internet), so this keeps it runnable: shellcheck finds nothing in it, `--plan`
# works, and the site it would build is the one tests/e2e/bundles.sh builds for the offline
# harness (both take it from tests/e2e/site.sh), with the same hosts, booted the same way.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
source "$KUBEXM_SOURCE/tests/e2e/site.sh"
SCRIPT=$KUBEXM_SOURCE/tools/e2e-upstream.sh

command -v shellcheck >/dev/null || fail "shellcheck is missing (tools/install-deps.sh installs it)"
(cd "$KUBEXM_SOURCE" && shellcheck -x tools/e2e-upstream.sh tests/e2e/site.sh tests/e2e/hosts.sh) ||
  fail "shellcheck finds problems in tools/e2e-upstream.sh or the steps it shares"
pass "shellcheck: tools/e2e-upstream.sh and the steps it shares are clean"

for kind in kx kh kn; do
  bash "$SCRIPT" --plan --site "$kind" >"$WORK/plan-$kind.txt" 2>"$WORK/plan-$kind.err" ||
    { cat "$WORK/plan-$kind.err"; fail "e2e-upstream.sh --plan --site $kind failed"; }
  e2e_site "$kind" "$WORK/site-$kind.yaml"
  sed -n '/^site /,/^manifest /p' "$WORK/plan-$kind.txt" | sed '1d;$d' | sed 's/^  //' >"$WORK/planned-$kind.yaml"
  diff -u "$WORK/site-$kind.yaml" "$WORK/planned-$kind.yaml" || fail "the $kind site of e2e-upstream.sh is not the offline harness's"
  grep -q "^2. boot:    10 hosts (${E2E_HOSTS[*]}) on 10.77.0.0/24" "$WORK/plan-$kind.txt" || { cat "$WORK/plan-$kind.txt"; fail "the $kind plan boots other hosts"; }
  # The builder is given no mirror: the real upstreams.
  ! grep -q -- "--mirror\|--registry-mirror" "$WORK/plan-$kind.txt" || fail "the $kind plan builds from a mirror"
done
grep -q -- "--allow-unpinned" "$WORK/plan-kx.txt" && ! grep -q -- "--allow-unpinned" "$WORK/plan-kh.txt" ||
  fail "only the kubexm cluster's build (its control-plane binaries have no public pins) may allow unpinned downloads"
pass "--plan for kx, kh and kn: the offline harness's site and hosts, built from the real upstreams"

expect_failure 2 "--site takes kx, kh or kn" bash "$SCRIPT" --plan --site kz
expect_failure 2 "unknown option --bogus" bash "$SCRIPT" --bogus
pass "a wrong option is refused with usage status 2"
