# Debian 12 fixtures for the OS package tests; sourced, never run.
#
#   ensure_deb_mirror        sets DEB_MIRROR_ROOT to a local copy of the bookworm archive
#                            (tools/make-deb-mirror.py): serve it and point a client at
#                            http://HOST:PORT/debian and http://HOST:PORT/debian-security.
#   ensure_minbase_root DIR  unpacks a debootstrap --variant=minbase bookworm root into DIR
#                            (tools/make-host-root.sh).
#
# Both build once into ${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test} and reuse what is there;
# concurrent callers wait for each other. They need root (apt-get, debootstrap, mknod).

: "${KUBEXM_SOURCE:?KUBEXM_SOURCE must point at the source tree}"
DEB_FIXTURE_CACHE=${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test}
DEB_FIXTURE_SUITES=(bookworm bookworm-updates bookworm-security)
DEB_FIXTURE_ARCHES=(amd64 arm64)

# os-profiles/packages.yaml's sets, by their Debian names.
DEB_FIXTURE_PACKAGES=(
  # common
  conntrack ipset ipvsadm socat ebtables ethtool iptables iproute2 chrony curl tar ca-certificates kmod procps
  # storage
  nfs-common open-iscsi
  # runtime
  libseccomp2
  # lb
  keepalived haproxy nginx libnginx-mod-stream
)

# deb_fixture_apt_lists: makes sure apt has the lists of every suite and arch the mirror copies,
# adding the foreign arch and running apt-get update only when some are missing.
deb_fixture_apt_lists() {
  local suite arch native missing=0
  native=$(dpkg --print-architecture)
  for arch in "${DEB_FIXTURE_ARCHES[@]}"; do
    if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      dpkg --add-architecture "$arch"
      missing=1
    fi
  done
  for suite in "${DEB_FIXTURE_SUITES[@]}"; do
    compgen -G "/var/lib/apt/lists/*_dists_${suite}_InRelease" >/dev/null || missing=1
    for arch in "${DEB_FIXTURE_ARCHES[@]}"; do
      compgen -G "/var/lib/apt/lists/*_dists_${suite}_main_binary-${arch}_Packages*" >/dev/null || missing=1
    done
  done
  if [ "$missing" -eq 1 ]; then
    echo "deb-fixture: apt-get update (apt lists missing)" >&2
    apt-get update -qq >&2
  fi
}

# ensure_deb_mirror: sets DEB_MIRROR_ROOT. The mirror is rebuilt when the script, the package
# list or apt's view of the archive (its InRelease files) changed; the .debs are kept across
# rebuilds, so only new versions are downloaded.
ensure_deb_mirror() {
  mkdir -p "$DEB_FIXTURE_CACHE"
  (
    flock 9 || exit
    deb_fixture_apt_lists
  ) 9>"$DEB_FIXTURE_CACHE/apt-lists.lock" || return
  local key suite
  key=$({
    cat "$KUBEXM_SOURCE/tools/make-deb-mirror.py"
    for suite in "${DEB_FIXTURE_SUITES[@]}"; do
      cat /var/lib/apt/lists/*_dists_"${suite}"_InRelease
    done
    printf '%s\n' "${DEB_FIXTURE_PACKAGES[@]}"
  } | sha256sum | cut -c1-16) || return
  DEB_MIRROR_ROOT="$DEB_FIXTURE_CACHE/deb-mirror-$key"
  (
    flock 9 || exit
    [ -f "$DEB_MIRROR_ROOT/README.txt" ] ||
      python3 "$KUBEXM_SOURCE/tools/make-deb-mirror.py" --out "$DEB_MIRROR_ROOT" \
        --debs "$DEB_FIXTURE_CACHE/debian-debs" --packages "${DEB_FIXTURE_PACKAGES[@]}" \
        "${DEB_FIXTURE_ARCHES[@]/#/--arch=}" >&2
  ) 9>"$DEB_FIXTURE_CACHE/deb-mirror.lock"
}

# ensure_minbase_root DIR: DIR (absent or empty) becomes a minbase bookworm root of the
# machine's arch, owners, modes and device nodes included. The tarball it comes from is
# rebuilt only when tools/make-host-root.sh changes.
ensure_minbase_root() {
  local dir=$1 key tarball
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "ensure_minbase_root: $dir is not empty" >&2
    return 1
  fi
  key=$(sha256sum <"$KUBEXM_SOURCE/tools/make-host-root.sh" | cut -c1-16) || return
  tarball="$DEB_FIXTURE_CACHE/bookworm-minbase-$key.tar.zst"
  mkdir -p "$DEB_FIXTURE_CACHE"
  (
    flock 9 || exit
    [ -f "$tarball" ] || bash "$KUBEXM_SOURCE/tools/make-host-root.sh" "$tarball"
  ) 9>"$DEB_FIXTURE_CACHE/bookworm-minbase.lock" || return
  mkdir -p "$dir"
  zstd -dc "$tarball" | tar --extract --numeric-owner --same-owner --preserve-permissions \
    --xattrs --xattrs-include='*' --acls -C "$dir"
}

# ensure_boot_root DIR: like ensure_minbase_root, with systemd, dbus and iproute2 (make-host-root.sh
# --boot): a root systemd-nspawn -b boots, for the role tests' hosts.
ensure_boot_root() {
  local dir=$1 key tarball
  key=$(sha256sum <"$KUBEXM_SOURCE/tools/make-host-root.sh" | cut -c1-16) || return
  tarball="$DEB_FIXTURE_CACHE/bookworm-boot-$key.tar.zst"
  mkdir -p "$DEB_FIXTURE_CACHE" "$dir"
  (
    flock 9 || exit
    [ -f "$tarball" ] || bash "$KUBEXM_SOURCE/tools/make-host-root.sh" --boot "$tarball"
  ) 9>"$DEB_FIXTURE_CACHE/bookworm-boot.lock" || return
  zstd -dc "$tarball" | tar --extract --numeric-owner --same-owner --preserve-permissions \
    --xattrs --xattrs-include='*' --acls -C "$dir"
}
