#!/usr/bin/env bash
# Builds a minimal Debian 12 root file system, for tests that install packages into a host:
# `debootstrap --variant=minbase bookworm` (the Priority: required packages and apt), packed as
# a tar.zst with numeric owners, modes and xattrs kept.
#
# Usage: make-host-root.sh [--boot] OUT.tar.zst
# --boot adds what a root needs to boot with systemd-nspawn -b (systemd, systemd-sysv, dbus,
# iproute2), for the booted test hosts.
# The mirror is the one apt uses here (/etc/apt/sources.list.d/*.sources, or sources.list), with
# the keyring its Signed-By names. OUT is written whole or not at all. Needs root.
set -euo pipefail

include=()
if [ "${1:-}" = --boot ]; then
  include=(--include=systemd,systemd-sysv,dbus,iproute2)
  shift
fi
if [ $# -ne 1 ] || [[ $1 != *.tar.zst ]]; then
  echo "usage: $0 [--boot] OUT.tar.zst" >&2
  exit 2
fi
out=$(realpath -m "$1")
suite=bookworm

# mirror_of SUITE: "URI [KEYRING]" of the first apt source of type deb carrying SUITE.
mirror_of() {
  local suite=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 paragraphs; the first URI of the first paragraph with Types: deb and the suite.
    awk -v suite="$suite" '
      function done() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") {
          print uri, key; found = 1; exit
        }
        types = suites = uri = key = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { done(); next }
      tolower($1) == "types:"     { $1 = ""; types = substr($0, 2) }
      tolower($1) == "suites:"    { $1 = ""; suites = substr($0, 2) }
      tolower($1) == "uris:"      { uri = $2 }
      tolower($1) == "signed-by:" { if ($2 ~ /^\//) key = $2 }
      END { if (!found) done() }
    ' "$f" | head -n1 | grep . && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENT...
    sed -E 's/#.*//' "$f" | awk -v suite="$suite" '
      $1 == "deb" {
        key = ""
        if (match($0, /\[[^]]*\]/)) {
          options = substr($0, RSTART + 1, RLENGTH - 2)
          $0 = substr($0, 1, RSTART - 1) substr($0, RSTART + RLENGTH)
          if (match(options, /signed-by=[^ ]+/)) key = substr(options, RSTART + 10, RLENGTH - 10)
        }
        if ($3 == suite) { print $2, key; exit }
      }
    ' | head -n1 | grep . && return 0
  done
  return 1
}

read -r mirror keyring < <(mirror_of "$suite") || {
  echo "make-host-root: no apt source of type deb for $suite in /etc/apt" >&2
  exit 1
}
keyring_args=()
if [[ ${keyring:-} == *.gpg ]] && [ -f "$keyring" ]; then
  keyring_args=(--keyring="$keyring")
fi

root=$(mktemp -d "${TMPDIR:-/var/tmp}/host-root-XXXXXX")
log=$(mktemp "${TMPDIR:-/var/tmp}/host-root-XXXXXX.log")
partial="$out.tmp-$$"
cleanup() {
  # debootstrap mounts proc and sys inside the root; a failed run can leave them there.
  local m
  awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$root" "$partial" "$log"
}
trap cleanup EXIT

echo "make-host-root: debootstrap --variant=minbase ${include[*]} $suite from $mirror" >&2
debootstrap --variant=minbase "${include[@]}" "${keyring_args[@]}" "$suite" "$root" "$mirror" >"$log" 2>&1 || {
  tail -n 30 "$log" >&2
  echo "make-host-root: debootstrap failed" >&2
  exit 1
}
# What only the build needed: downloaded debs and the apt lists (the tests bring their own).
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_*
chmod 755 "$root"  # mktemp made it 0700; the tarball's ./ gives the unpacked root its mode
if [ ${#include[@]} -gt 0 ]; then
  # A booted test host: no machine-id of its own (systemd makes one at boot), a root login
  # on the console for debugging, nothing else started that needs a network.
  : >"$root/etc/machine-id"
  chroot "$root" passwd -d root >/dev/null
  chroot "$root" systemctl mask --quiet systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer 2>/dev/null || true
fi

mkdir -p "$(dirname "$out")"
tar --create --numeric-owner --xattrs --xattrs-include='*' --acls --sort=name -C "$root" . |
  zstd -q -T0 -o "$partial"
mv -f "$partial" "$out"
echo "make-host-root: $out ($(du -h "$out" | cut -f1), $(chroot "$root" dpkg-query -W | wc -l) packages)" >&2
