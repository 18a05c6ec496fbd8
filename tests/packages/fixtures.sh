# shellcheck shell=bash
# What the OS package tests share; sourced after tests/lib.sh, never run.
#
#   start_package_mirrors [server options...]
#       serves, on one 127.0.0.1 port, the component upstreams (tests/lib.sh), the Debian 12
#       mirror (deb-fixture.sh) and the Rocky 9 style rpm repositories (rpm-fixture.sh), the
#       last two where the profiles' default mirror puts them; sets MIRRORS to the --mirror
#       options that send every upstream there, and ALIYUN to the served mirror's URL.
#   packages_manifest OUT [extra yaml...]
#       a manifest for kubectl and the OS packages of debian-12 and rocky-9, amd64 and arm64,
#       with the local mirror's digests as pins.
#   apt_in_root ROOT ARGS...   apt-get inside ROOT, pointed at the served Debian mirror only
#   dnf_conf OUT ARCH [ROOT_REPOS_DIR]
#       a dnf.conf whose repositories are the served rpm fixture's (or, with a third
#       argument, the repositories under that directory) for ARCH

source "$KUBEXM_SOURCE/tests/packages/deb-fixture.sh"
source "$KUBEXM_SOURCE/tests/packages/rpm-fixture.sh"

start_package_mirrors() {
  ensure_mirror
  ensure_deb_mirror
  ensure_rpm_repo
  start_mirror "$MIRROR_ROOT" \
    --mount "/aliyun/debian=$DEB_MIRROR_ROOT/debian" \
    --mount "/aliyun/debian-security=$DEB_MIRROR_ROOT/debian-security" \
    --mount "/aliyun/rockylinux=$RPM_REPO_ROOT/rockylinux" "$@"
  ALIYUN="http://127.0.0.1:$MIRROR_PORT/aliyun"
  MIRRORS+=(--mirror "https://mirrors.aliyun.com=$ALIYUN")
}

packages_manifest() {
  local out=$1
  shift
  {
    printf 'name: pkgs\nversion: "1.0"\nkubernetes: 1.32.10\narches: [amd64, arm64]\n'
    printf 'os_profiles: [debian-12, rocky-9]\ncomponents: [kubectl]\n'
    printf '%s\n' "$@"
    cat "$MIRROR_ROOT/checksums.yaml"
  } >"$out"
}

apt_in_root() {
  local root=$1
  shift
  mkdir -p "$root/etc/apt/sources.list.d"
  cat >"$root/etc/apt/sources.list" <<EOF
deb [trusted=yes] $ALIYUN/debian bookworm main
deb [trusted=yes] $ALIYUN/debian bookworm-updates main
deb [trusted=yes] $ALIYUN/debian-security bookworm-security main
EOF
  rm -f "$root"/etc/apt/sources.list.d/*
  # The mirror serves the uncompressed Packages files InRelease lists, not by-hash names.
  chroot "$root" apt-get -q -o Acquire::By-Hash=no -o Acquire::Languages=none -o APT::Sandbox::User=root "$@"
}

dnf_conf() {
  local out=$1 arch=$2 base=${3:-} repo url
  {
    printf '[main]\nreposdir=/dev/null\ninstall_weak_deps=False\ngpgcheck=0\nbest=True\n'
    printf 'cachedir=%s\nkeepcache=False\n' "$WORK/dnf-cache-$arch"
    if [ -n "$base" ]; then
      printf '[bundle]\nname=bundle\nbaseurl=file://%s\n' "$base"
    else
      for repo in BaseOS AppStream extras; do
        url="$ALIYUN/rockylinux/9/$repo/$arch/os"
        printf '[%s]\nname=%s\nbaseurl=%s\n' "$repo" "$repo" "$url"
      done
    fi
  } >"$out"
}

# dnf_closure CONF ARCH ROOT NAMES...: the name-evr.arch of every package `dnf install`
# would add to ROOT, one per line, sorted.
dnf_closure() {
  local conf=$1 arch=$2 root=$3
  shift 3
  local out rc=0
  out=$(dnf -c "$conf" --installroot="$root" --releasever=9 --forcearch="$arch" -y --assumeno \
    install "$@" 2>&1) || rc=$?
  if ! grep -q '^Operation aborted' <<<"$out"; then
    echo "$out" >&2
    fail "dnf could not resolve $*"
  fi
  # The table rows: name arch [epoch:]version-release repo size unit. With best=False, the
  # newest versions it could not install are listed after "Skipping packages with broken
  # dependencies:", which ends the rows we want.
  awk '/^Installing:|^Installing dependencies:/ {t=1; next} /^Transaction Summary|^Skipping packages/ {t=0}
       t && NF == 1 {held = $1; next}
       t && held != "" {$0 = held " " $0; held = ""}
       t && NF >= 6 && $2 ~ /^(x86_64|aarch64|noarch|i686)$/ {print $1 "-" $3 "." $2}' <<<"$out" | sort
}

# lock_closure LOCK PROFILE ARCH ROLE: the same for a role's closure in a lock.
lock_closure() {
  python3 - "$@" <<'EOF'
import json, sys
lock, profile, arch, role = sys.argv[1:]
for s in json.load(open(lock))["package_sets"]:
    if s["profile"] == profile and s["arch"] == arch:
        files = {p["file"]: p for p in s["packages"]}
        for f in sorted(f"{files[f]['name']}-{files[f]['evr']}.{files[f]['arch']}" for f in s["roles"][role]["install"]):
            print(f)
EOF
}
