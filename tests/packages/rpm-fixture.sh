# shellcheck shell=bash
# A Rocky Linux 9 style rpm repository set for the shell tests (tools/make-rpm-repo.py);
# sourced, never run. Needs KUBEXM_SOURCE (the source tree); works under set -euo pipefail.

# ensure_rpm_repo: sets RPM_REPO_ROOT to the repository set built by the current
# tools/make-rpm-repo.py, building it first when it is not in the fixture cache. The rocky-9
# profile's repositories sit under it as rockylinux/9/<repo>/<arch>/os: served over HTTP (or as
# file://$RPM_REPO_ROOT), it stands in for the profile's {mirror}.
ensure_rpm_repo() {
  : "${KUBEXM_SOURCE:?KUBEXM_SOURCE must point at the source tree}"
  local cache=${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test} key
  mkdir -p "$cache"
  key=$(sha256sum "$KUBEXM_SOURCE/tools/make-rpm-repo.py" | cut -c1-16)
  RPM_REPO_ROOT="$cache/rpm-repo-$key"
  (
    flock 9
    if [ ! -f "$RPM_REPO_ROOT/README.txt" ]; then
      python3 "$KUBEXM_SOURCE/tools/make-rpm-repo.py" --out "$RPM_REPO_ROOT" --debs "$cache/debs" >&2
    fi
  ) 9>"$cache/rpm-repo.lock"
}
