#!/usr/bin/env bash
# A booted Debian 12 host with no network runs `./install --role=worker` of a bundle built
# without a site: the host is prepared for the role and no more.
# - OS packages and binaries installed, containerd 2 active with the default configuration
#   (version 3, the bundle's pause image as the sandbox, its CRI plugin ok), the bundle's
#   images there, kubelet installed and enabled but not running; the host keeps its name and
#   /etc/hosts; the output says that joining a cluster needs a bundle with a site;
# - `--dry-run` first says what would run and changes nothing;
# - a second run changes nothing and says so; reset takes it all back.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/e2e/hosts.sh"
: "${KUBEXM_E2E:?KUBEXM_E2E must name the directory tests/e2e/bundles.sh builds the role bundles in}"
BUNDLE_DIR=$KUBEXM_E2E/prepare
INSTALL=/media/kubexm/install

lan_up
host_boot spare1 10.77.0.61 "$BUNDLE_DIR"
host_snapshot spare1 "$WORK/before.txt"

host_run spare1 "$INSTALL" --role=worker --dry-run >"$WORK/dry.out" 2>"$WORK/dry.err" ||
  { cat "$WORK/dry.err"; fail "the dry run failed"; }
grep -q "^host prepared for worker (a bundle without a site)" "$WORK/dry.out" || { cat "$WORK/dry.out"; fail "the dry run does not say the host is prepared without a site"; }
grep -qE "^  files +would-run .*default configuration" "$WORK/dry.out" || { cat "$WORK/dry.out"; fail "the dry run does not plan the default configuration"; }
grep -qE "^  actions +skipped +the bundle has no site" "$WORK/dry.out" || { cat "$WORK/dry.out"; fail "the dry run does not say why nothing joins"; }
host_snapshot spare1 "$WORK/after-dry.txt"
diff "$WORK/before.txt" "$WORK/after-dry.txt" >/dev/null || fail "the dry run changed the host's files"
pass "--dry-run plans the preparation and changes nothing"

host_run spare1 "$INSTALL" --role=worker >"$WORK/first.out" 2>"$WORK/first.err" ||
  { tail -30 "$WORK/first.err"; fail "preparing the host failed"; }
grep -q "^joining a cluster needs a bundle built with a site" "$WORK/first.out" || { cat "$WORK/first.out"; fail "the output does not say that joining needs a site"; }
[ "$(host_run spare1 systemctl is-active containerd)" = active ] || fail "containerd is not active"
host_run spare1 cat /etc/containerd/config.toml >"$WORK/config.toml"
grep -q "^version = 3" "$WORK/config.toml" || fail "the default config is not version 3"
pause=$("$INSTALLER" --bundle "$BUNDLE_DIR/install" info --json |
  python3 -c 'import json,sys; print(next(i["ref"] for i in json.load(sys.stdin)["bundle"]["images"] if "/pause:" in i["ref"]))')
grep -q "sandbox = \"$pause\"" "$WORK/config.toml" || { cat "$WORK/config.toml"; fail "the sandbox image is not the bundle's $pause"; }
host_run spare1 ctr plugins ls | grep -qE "^io\.containerd\.grpc\.v1 +cri +.* ok" || fail "containerd's CRI plugin is not ok with the default config"
count=$("$INSTALLER" --bundle "$BUNDLE_DIR/install" info --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["bundle"]["images"]))')
[ "$(host_run spare1 ctr -n k8s.io images ls -q | grep -vc '^sha256:')" -ge "$count" ] || fail "not every image of the bundle is in containerd"
host_run spare1 test -x /usr/local/bin/kubelet || fail "kubelet is not installed"
[ "$(host_run spare1 systemctl is-enabled kubelet)" = enabled ] || fail "kubelet is not enabled"
[ "$(host_run spare1 systemctl is-active kubelet || true)" = inactive ] || fail "kubelet runs without a cluster"
[ "$(host_run spare1 hostname)" = spare1 ] || fail "the host's name was changed"
if host_run spare1 grep -q kubexm /etc/hosts 2>/dev/null; then fail "/etc/hosts got a block without a site"; fi
pass "prepared: containerd 2 active with the default config (version 3, sandbox $pause, CRI ok), $count images, kubelet installed and enabled, not running; name and /etc/hosts kept"

host_run spare1 "$INSTALL" --role=worker >"$WORK/second.out" 2>"$WORK/second.err" || { cat "$WORK/second.err"; fail "the second run failed"; }
grep -q "^every step was done already with these inputs; nothing changed" "$WORK/second.out" ||
  { cat "$WORK/second.out"; fail "the second run did not say that nothing changed"; }
host_run spare1 "$INSTALL" reset --purge-data >"$WORK/reset.out" 2>"$WORK/reset.err" || { cat "$WORK/reset.err"; fail "reset failed"; }
host_run spare1 test ! -e /etc/containerd/config.toml || fail "reset left the containerd config"
host_run spare1 test ! -e /usr/local/bin/kubelet || fail "reset left kubelet"
if host_run spare1 systemctl is-active containerd >/dev/null; then fail "reset left containerd running"; fi
pass "a second run changes nothing and says so; reset takes the preparation back"
