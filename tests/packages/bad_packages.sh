#!/usr/bin/env bash
# OS package resolution with bad input: packages that do not exist or cannot be satisfied
# (all reported in one run, with profile and arch), a Packages index or primary.xml that does
# not match what InRelease / repomd.xml say, a .deb that does not match its index, a mirror
# that is down, an unknown profile, and a lock that no longer matches the manifest.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

start_package_mirrors
manifest() { # manifest OUT [extra yaml]: rocky-9 (or what the extra lines say) for both arches
  local out=$1
  shift
  {
    printf 'name: bad\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64, arm64]\ncomponents: [kubectl]\nroles: [worker]\n'
    printf '%s\n' "$@"
    cat "$MIRROR_ROOT/checksums.yaml"
  } >"$out"
}

# 1. Every problem of every target at once: a name no package has, a dependency nothing
# provides, a package the arm64 repositories lack.
manifest "$WORK/unsat.yaml" "os_profiles: [rocky-9]" "packages: {extra: [no-such-package, kubexm-broken, x86-only-tool]}"
expect_failure 1 "rocky-9 amd64 role worker: no package is called or provides 'no-such-package'" \
  "$BUILDER" build -f "$WORK/unsat.yaml" -o "$WORK/out-unsat" --cache "$WORK/cache" "${MIRRORS[@]}"
for line in "rocky-9 arm64 role worker: no package is called or provides 'no-such-package'" \
  "rocky-9 arm64 role worker: no package is called or provides 'x86-only-tool'" \
  "rocky-9 amd64 role worker: nothing provides libmissing.so.9\(\)\(64bit\) needed by kubexm-broken-1.0-1.el9.x86_64" \
  "rocky-9 arm64 role worker: nothing provides libmissing.so.9\(\)\(64bit\) needed by kubexm-broken-1.0-1.el9.aarch64"; do
  grep -qE -- "$line" "$WORK/stderr" || { cat "$WORK/stderr"; fail "not reported: $line"; }
done
grep -q "x86-only-tool'" <(grep "amd64" "$WORK/stderr") && fail "x86-only-tool was reported missing on amd64"
[ ! -e "$WORK/out-unsat/kubexm.lock" ] || fail "a lock was written for unsatisfiable closures"
pass "unknown, unsatisfiable and arch-missing packages are all reported in one run, per profile and arch"

# 2. Indices that do not match their top index, and a package that does not match its index:
# refused (exit 3), named with both digests, never cached.
manifest "$WORK/deb.yaml" "os_profiles: [debian-12]"
start_package_mirrors --corrupt '/aliyun/debian/dists/bookworm/main/binary-arm64/Packages$'
expect_failure 3 "http://127.0.0.1:$MIRROR_PORT/aliyun/debian/dists/bookworm/main/binary-arm64/Packages \(mirror of https://mirrors.aliyun.com/debian/dists/bookworm/main/binary-arm64/Packages\): SHA-256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the file was discarded, not cached" \
  "$BUILDER" build -f "$WORK/deb.yaml" -o "$WORK/out-deb" --cache "$WORK/cache2" "${MIRRORS[@]}"
pass "a Packages index whose SHA-256 is not the one InRelease gives is refused"

primary=$(cd "$RPM_REPO_ROOT" && ls rockylinux/9/AppStream/aarch64/os/repodata/*-primary.xml*)
start_package_mirrors --corrupt "/aliyun/$primary\$"
expect_failure 3 "/aliyun/$primary \(mirror of https://mirrors.aliyun.com/$primary\): SHA-256 mismatch" \
  "$BUILDER" build -f "$WORK/unsat.yaml" -o "$WORK/out-rpm" --cache "$WORK/cache3" "${MIRRORS[@]}"
pass "a primary.xml whose SHA-256 is not the one repomd.xml gives is refused"

start_package_mirrors --corrupt '/conntrack_[^/]*_amd64\.deb$'
expect_failure 3 "debian-12 conntrack 1:1.4.7-1\+b2: http://127.0.0.1:$MIRROR_PORT/aliyun/debian/pool/main/c/conntrack-tools/conntrack_1.4.7-1\+b2_amd64.deb \(mirror of https://mirrors.aliyun.com/debian/pool/main/c/conntrack-tools/conntrack_1.4.7-1\+b2_amd64.deb\): SHA-256 mismatch: expected [0-9a-f]{64}" \
  "$BUILDER" build -f "$WORK/deb.yaml" -o "$WORK/out-deb" --cache "$WORK/cache4" "${MIRRORS[@]}"
good=$(sha256sum "$DEB_MIRROR_ROOT/debian/pool/main/c/conntrack-tools/conntrack_1.4.7-1+b2_amd64.deb" | cut -c1-64)
[ ! -e "$WORK/cache4/sha256/${good:0:2}/$good" ] || fail "the tampered .deb's name was used in the cache"
[ -z "$(find "$WORK/cache4/sha256" -type f -exec sh -c 'sha256sum "$1" | cut -c1-64 | grep -vqx "$(basename "$1")"' _ {} \; -print)" ] ||
  fail "a cached file does not match its name"
[ ! -e "$WORK/out-deb/kubexm.lock" ] || fail "a lock was written despite a tampered package"
pass "a .deb whose SHA-256 is not its index's is refused and not cached"

# 3. A mirror that is down: the URL is named.
stop_mirror
expect_failure 1 "debian-12 amd64 bookworm: http://127.0.0.1:$MIRROR_PORT/aliyun/debian/dists/bookworm/InRelease \(mirror of https://mirrors.aliyun.com/debian/dists/bookworm/InRelease\): .*(Couldn't connect|Connection refused|Failed to connect)" \
  "$BUILDER" build -f "$WORK/deb.yaml" -o "$WORK/out-down" --cache "$WORK/cache5" --retries 0 "${MIRRORS[@]}"
pass "an unreachable distribution mirror is named"

# 4. A profile that does not exist, an arch a profile lacks: usage errors naming what there is.
manifest "$WORK/unknown.yaml" "os_profiles: [debian-13]"
expect_failure 2 "os_profiles: no profile 'debian-13' in .* \(there are: almalinux-9, centos-7, debian-12, kylin-v10, openeuler-22.03, rocky-8, rocky-9, ubuntu-20.04, ubuntu-22.04, ubuntu-24.04\)" \
  "$BUILDER" resolve -f "$WORK/unknown.yaml" -o "$WORK/unknown.lock" --cache "$WORK/cache5" "${MIRRORS[@]}"
manifest "$WORK/closure.yaml" "os_profiles: [debian-12]" "packages: {closure: everything}"
expect_failure 2 "closure.yaml: line [0-9]+: closure: 'everything' is not minimal \(over the OS's base set\), full" \
  "$BUILDER" resolve -f "$WORK/closure.yaml" -o "$WORK/closure.lock" --cache "$WORK/cache5" "${MIRRORS[@]}"
pass "an unknown profile and a bad closure mode are usage errors naming what is allowed"

# 5. A lock made before the manifest asked for another package is stale.
start_package_mirrors
"$BUILDER" -q resolve -f "$WORK/deb.yaml" -o "$WORK/deb.lock" --cache "$WORK/cache6" "${MIRRORS[@]}" >/dev/null 2>&1 ||
  fail "resolve failed"
manifest "$WORK/deb-jq.yaml" "os_profiles: [debian-12]" "packages: {extra: [jq]}"
expect_failure 2 "packages: extra: the lock has \[\], the manifest \[\"jq\"\]" \
  "$BUILDER" build -f "$WORK/deb-jq.yaml" --lock "$WORK/deb.lock" -o "$WORK/out-stale" --cache "$WORK/cache6" "${MIRRORS[@]}"
grep -q "debian-12 amd64: the packages of role worker changed" "$WORK/stderr" || { cat "$WORK/stderr"; fail "the changed role is not named"; }
pass "a lock that no longer matches the manifest's packages is refused"
