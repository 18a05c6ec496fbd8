#!/usr/bin/env bash
# Builds every cached fixture the integration tests share, once, before they run (ctest's
# fixture "caches"): the upstream mirror, the Debian 12 mirror, the rpm repositories, the
# minbase host root and the container images. Each is kept in $KUBEXM_TEST_CACHE
# (/var/cache/kubexm-test) and rebuilt only when the script that makes it changed, so on a
# warm machine this takes a second. Building them here, with its own time limit, keeps a cold
# first run (about 10 minutes on 2 cores) from eating into the time of the tests that use them.
source "$(dirname "$0")/lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"
source "$KUBEXM_SOURCE/tests/images/registry.sh"

started=$SECONDS
ensure_mirror
ensure_deb_mirror
ensure_rpm_repo
ensure_images
ensure_minbase_root "$WORK/root" # unpacked once to prove the tarball is whole
ensure_boot_root "$WORK/boot"   # the booted role-test hosts' root
[ -x "$WORK/root/usr/bin/dpkg" ] && [ -x "$WORK/boot/lib/systemd/systemd" ] || fail "a host root is incomplete"
pass "fixtures ready in $((SECONDS - started)) s: $MIRROR_ROOT $DEB_MIRROR_ROOT $RPM_REPO_ROOT $IMAGES_ROOT"
