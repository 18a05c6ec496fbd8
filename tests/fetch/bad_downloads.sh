#!/usr/bin/env bash
# What goes wrong between the builder and an upstream: a tampered file, a cut connection, a
# missing file, a binary of the wrong arch, a mirror whose content disagrees with the pinned
# digests, an unpinned version, an unreachable mirror. Each is a clear error (or, for the cut
# connection, a resumed download), and nothing bad reaches the cache or the output.
source "$(dirname "$0")/../lib.sh"

ensure_mirror
binaries_manifest "$WORK/site.yaml"

# cache_is_clean DIR: every object in the cache has the digest it is filed under.
cache_is_clean() {
  local dir=$1 file
  [ -d "$dir/sha256" ] || return 0
  while IFS= read -r file; do
    [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$(basename "$file")" ] || fail "cache object $file is not what its name says"
  done < <(find "$dir/sha256" -type f)
}

# 1. A tampered download: a hard error naming the URL and both digests; nothing cached, no output.
start_mirror "$MIRROR_ROOT" --corrupt 'containerd-2\.1\.5-linux-arm64\.tar\.gz$'
expect_failure 3 "containerd 2.1.5 arm64: http://127.0.0.1:$MIRROR_PORT/github.com/containerd/containerd/releases/download/v2.1.5/containerd-2.1.5-linux-arm64.tar.gz \(mirror of https://github.com/.*\): SHA-256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the file was discarded, not cached" \
  "$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out-corrupt" --cache "$WORK/c1" "${MIRRORS[@]}"
cache_is_clean "$WORK/c1"
expected=$(grep -A4 '^  containerd:' "$MIRROR_ROOT/checksums.yaml" | awk '$1 == "arm64:" {print $2}')
[ ${#expected} -eq 64 ] || fail "no arm64 containerd digest in $MIRROR_ROOT/checksums.yaml"
[ ! -e "$WORK/c1/sha256/${expected:0:2}/$expected" ] || fail "the tampered file was cached under the expected digest"
[ -z "$(ls -A "$WORK/c1/partial")" ] || fail "the tampered download was left in the cache: $(ls "$WORK/c1/partial")"
[ ! -e "$WORK/out-corrupt/install" ] || fail "a bundle was written despite the tampered download"
pass "a tampered download fails, names the URL and digests, and is not cached"

# 2. A connection cut half-way: the download resumes with a Range request and completes.
start_mirror "$MIRROR_ROOT" --drop-once 'bin/linux/arm64/kubectl$'
"$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out-resume" --cache "$WORK/c2" "${MIRRORS[@]}" -j 2 \
  >/dev/null 2>"$WORK/resume.err" || { cat "$WORK/resume.err"; fail "the build did not survive a cut connection"; }
grep -q "^GET /dl.k8s.io/release/v1.32.10/bin/linux/arm64/kubectl cut " "$WORK/server.log" ||
  fail "the server did not cut the connection"
grep -q "^GET /dl.k8s.io/release/v1.32.10/bin/linux/arm64/kubectl 206 " "$WORK/server.log" ||
  fail "the download did not resume with a Range request: $(grep kubectl "$WORK/server.log")"
grep -q "kubectl 1.32.10 arm64: .*retrying (2 of 5) from byte [1-9]" "$WORK/resume.err" ||
  fail "the retry was not reported: $(cat "$WORK/resume.err")"
grep -q "fetched kubectl 1.32.10 arm64: .*resumed at" "$WORK/resume.err" || fail "the resume was not reported"
"$INSTALLER" verify --bundle "$WORK/out-resume/install" >/dev/null || fail "the resumed build's bundle does not verify"
pass "a cut connection resumes where it stopped"

# 3. A file the upstream does not have: the component, version, arch and URL are named.
start_mirror "$MIRROR_ROOT"
binaries_manifest "$WORK/missing.yaml" "components: [crictl]" "versions: {crictl: 1.32.9}"
expect_failure 1 "crictl 1.32.9 amd64: checksum file: .*crictl-v1.32.9-linux-amd64.tar.gz.sha256.*: HTTP 404 Not Found" \
  "$BUILDER" build -f "$WORK/missing.yaml" -o "$WORK/out-404" --cache "$WORK/c3" "${MIRRORS[@]}" --allow-unpinned
grep -q "crictl 1.32.9 arm64" "$WORK/stderr" || fail "the arm64 404 is not reported alongside the amd64 one"
pass "a 404 names the component, version, arch and URL"

# 4. An amd64 binary filed as arm64, with checksum files that agree: the ELF check refuses it.
cp -al "$MIRROR_ROOT" "$WORK/swapped"
k8s="$WORK/swapped/dl.k8s.io/release/v1.32.10/bin/linux"
rm "$k8s/arm64/kubelet" "$k8s/arm64/kubelet.sha256"
cp "$k8s/amd64/kubelet" "$k8s/arm64/kubelet"
sha256sum "$k8s/arm64/kubelet" | cut -d' ' -f1 >"$k8s/arm64/kubelet.sha256"
start_mirror "$WORK/swapped"
digest=$(cat "$k8s/arm64/kubelet.sha256")
{
  cat "$KUBEXM_SOURCE/manifests/demo.yaml"
  printf 'components: [kubelet]\npackages: {closure: none}\nchecksums:\n  kubelet:\n    1.32.10: {amd64: %s, arm64: %s}\n' "$digest" "$digest"
} >"$WORK/kubelet.yaml"
expect_failure 3 "kubelet 1.32.10 arm64: http://127.0.0.1:$MIRROR_PORT/dl.k8s.io/release/v1.32.10/bin/linux/arm64/kubelet: kubelet is an x86-64 \(amd64\) binary, but it is filed under arm64; refusing it" \
  "$BUILDER" build -f "$WORK/kubelet.yaml" -o "$WORK/out-elf" --cache "$WORK/c4" "${MIRRORS[@]}"
[ ! -e "$WORK/out-elf/kubexm.lock" ] || fail "a lock was written for a binary of the wrong arch"
pass "an amd64 binary served as arm64 is refused by its ELF header"

# 5. The mirror's files are not upstream's: against the catalogue's pinned digests (the real
# upstream values) the builder refuses them, naming the checksum file and both digests.
start_mirror "$MIRROR_ROOT"
{ cat "$KUBEXM_SOURCE/manifests/demo.yaml"; echo "packages: {closure: none}"; } >"$WORK/upstream-pins.yaml"
expect_failure 3 "runc 1.3.4 amd64: the upstream checksum file http://127.0.0.1:$MIRROR_PORT/github.com/opencontainers/runc/releases/download/v1.3.4/runc.sha256sum says [0-9a-f]{64}, but the catalogue pins 5966ca40b6187b30e33bfc299c5f1fe72e8c1aa01cf3fefdadf391668f47f103; refusing" \
  "$BUILDER" build -f "$WORK/upstream-pins.yaml" -o "$WORK/out-pins" --cache "$WORK/c5" "${MIRRORS[@]}"
[ "$(grep -c 'but the catalogue pins' "$WORK/stderr")" -eq 20 ] || fail "not every one of the 20 disagreements was reported"
[ ! -d "$WORK/c5/sha256" ] || [ -z "$(find "$WORK/c5/sha256" -type f)" ] || fail "files were downloaded despite the pins"
pass "a mirror whose content disagrees with the pinned digests is refused"

# 6. A version with no pin needs --allow-unpinned, and the lock says it was unpinned.
{ cat "$KUBEXM_SOURCE/manifests/demo.yaml"; echo "components: [kube-proxy]"; echo "packages: {closure: none}"; } \
  >"$WORK/unpinned.yaml"
expect_failure 2 "no pinned SHA-256 for kube-proxy 1.32.10 amd64, kube-proxy 1.32.10 arm64: add them under 'checksums:'" \
  "$BUILDER" resolve -f "$WORK/unpinned.yaml" -o "$WORK/unpinned.lock" --cache "$WORK/c6" "${MIRRORS[@]}"
"$BUILDER" resolve -f "$WORK/unpinned.yaml" -o "$WORK/unpinned.lock" --cache "$WORK/c6" "${MIRRORS[@]}" \
  --allow-unpinned >/dev/null 2>&1 || fail "--allow-unpinned did not resolve"
[ "$(grep -c '"pin": "none"' "$WORK/unpinned.lock")" -eq 2 ] || fail "the lock does not record the unpinned artifacts"
pass "unpinned versions need --allow-unpinned and the lock records them"

# 7. An unreachable mirror: the error names the URL and how many attempts were made.
stop_mirror
expect_failure 1 "kubelet 1.32.10 amd64: checksum file: http://127.0.0.1:$MIRROR_PORT/dl.k8s.io/.*/kubelet.sha256 .*Could(n't| not) connect" \
  "$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out-down" --cache "$WORK/c7" "${MIRRORS[@]}" --retries 1
pass "an unreachable mirror is a clear error"

# 8. Interrupted while downloading: exit 130, the partial file stays in the cache, and the
# next run resumes it with a Range request instead of starting again.
start_mirror "$MIRROR_ROOT" --slow 'bin/linux/amd64/kubectl$'
{
  printf 'name: k\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\ncomponents: [kubectl]\npackages: {closure: none}\n'
  cat "$MIRROR_ROOT/checksums.yaml"
} >"$WORK/kubectl.yaml"
: >"$WORK/server.log"
"$BUILDER" build -f "$WORK/kubectl.yaml" -o "$WORK/out-int" --cache "$WORK/c8" "${MIRRORS[@]}" >/dev/null 2>"$WORK/int.err" &
builder=$!
for _ in $(seq 200); do
  part=$(find "$WORK/c8/partial" -name '*.part' -size +1M 2>/dev/null | head -1 || true)
  [ -n "$part" ] && break
  sleep 0.05
done
[ -n "$part" ] || fail "the slow download never started"
kill -TERM "$builder"
rc=0
wait "$builder" || rc=$?
[ "$rc" -eq 130 ] || fail "an interrupted build exited $rc, expected 130: $(cat "$WORK/int.err")"
grep -q "partial download is kept" "$WORK/int.err" || fail "the interruption did not say the partial file is kept"
kept=$(stat -c %s "$part")
[ "$kept" -gt 0 ] || fail "the partial download was not kept"
[ ! -e "$WORK/out-int/install" ] || fail "an interrupted build left a bundle"
start_mirror "$MIRROR_ROOT"
"$BUILDER" build -f "$WORK/kubectl.yaml" -o "$WORK/out-int" --cache "$WORK/c8" "${MIRRORS[@]}" >/dev/null 2>"$WORK/int2.err" ||
  { cat "$WORK/int2.err"; fail "the build after an interruption failed"; }
grep -q "^GET /dl.k8s.io/release/v1.32.10/bin/linux/amd64/kubectl 206 " "$WORK/server.log" ||
  fail "the second run did not resume the partial download: $(grep kubectl "$WORK/server.log")"
[ -z "$(ls -A "$WORK/c8/partial")" ] || fail "partial files remain after the resumed build"
pass "an interrupted download resumes on the next run (kept $kept bytes)"

# 9. TLS is verified: a mirror with a self-signed certificate is refused, and accepted with
# --cacert naming it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
start_mirror "$MIRROR_ROOT" --tls "$WORK/tls.crt" "$WORK/tls.key"
tls_mirrors=(--mirror "https://dl.k8s.io=https://127.0.0.1:$MIRROR_PORT/dl.k8s.io")
expect_failure 1 "certificate.*TLS verification is always on" \
  "$BUILDER" resolve -f "$WORK/kubectl.yaml" -o "$WORK/tls.lock" --cache "$WORK/c9" "${tls_mirrors[@]}" --retries 0
"$BUILDER" resolve -f "$WORK/kubectl.yaml" -o "$WORK/tls.lock" --cache "$WORK/c9" "${tls_mirrors[@]}" \
  --cacert "$WORK/tls.crt" >/dev/null 2>"$WORK/tls.err" || { cat "$WORK/tls.err"; fail "--cacert did not make the mirror trusted"; }
pass "TLS verification refuses an unknown certificate; --cacert trusts a site CA"

# 10. Proxies come from the environment: a dead https_proxy/http_proxy breaks the fetch
# (so it was used), and no_proxy exempts the mirror.
start_mirror "$MIRROR_ROOT"
expect_failure 1 "kubectl 1.32.10 amd64: checksum file: .*port 9" \
  env http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= \
  "$BUILDER" resolve -f "$WORK/kubectl.yaml" -o "$WORK/proxy.lock" --cache "$WORK/c10" "${MIRRORS[@]}" --retries 0
env http_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1 \
  "$BUILDER" resolve -f "$WORK/kubectl.yaml" -o "$WORK/proxy.lock" --cache "$WORK/c10" "${MIRRORS[@]}" >/dev/null 2>&1 ||
  fail "no_proxy did not exempt the mirror"
pass "http_proxy and no_proxy from the environment are honoured"

# 11. A cut connection whose retry meets a server that ignores Range (it answers 200 with
# the whole file): the file is started over and completes.
{
  printf 'name: k\nversion: "1"\nkubernetes: 1.32.10\narches: [arm64]\nos_profiles: [debian-12]\ncomponents: [kubectl]\npackages: {closure: none}\n'
  cat "$MIRROR_ROOT/checksums.yaml"
} >"$WORK/kubectl-arm64.yaml"
start_mirror "$MIRROR_ROOT" --drop-once 'arm64/kubectl$' --ignore-range 'arm64/kubectl$'
: >"$WORK/server.log"
"$BUILDER" build -f "$WORK/kubectl-arm64.yaml" -o "$WORK/out-norange" --cache "$WORK/c11" "${MIRRORS[@]}" \
  >/dev/null 2>"$WORK/norange.err" || { cat "$WORK/norange.err"; fail "a server ignoring Range broke the download"; }
[ "$(grep -c 'arm64/kubectl 200 ' "$WORK/server.log")" -eq 1 ] && grep -q 'arm64/kubectl cut ' "$WORK/server.log" ||
  fail "expected a cut transfer and then a whole one: $(cat "$WORK/server.log")"
pass "a server that ignores Range gets the file started over"

# 12. A server error that passes (HTTP 503 once) is retried and the build completes.
start_mirror "$MIRROR_ROOT" --status-once 'arm64/kubectl$=503'
"$BUILDER" build -f "$WORK/kubectl-arm64.yaml" -o "$WORK/out-503" --cache "$WORK/c12" "${MIRRORS[@]}" \
  >/dev/null 2>"$WORK/503.err" || { cat "$WORK/503.err"; fail "a passing 503 failed the build"; }
grep -q "kubectl 1.32.10 arm64: HTTP 503 from .*; retrying (2 of 5)" "$WORK/503.err" || fail "the 503 retry was not reported"
pass "an HTTP 503 is retried"

# 13. A damaged file in the cache (a flipped byte: the size is right) is found when building, removed
# and downloaded again; the bundle is right.
object=$(find "$WORK/c12/sha256" -type f | head -1)
printf 'X' | dd of="$object" bs=1 seek=1000000 conv=notrunc status=none
"$BUILDER" build -f "$WORK/kubectl-arm64.yaml" -o "$WORK/out-503" --cache "$WORK/c12" "${MIRRORS[@]}" \
  >/dev/null 2>"$WORK/heal.err" || { cat "$WORK/heal.err"; fail "a damaged cache file failed the build"; }
grep -q "was damaged (SHA-256 [0-9a-f]*); removed it, downloading again" "$WORK/heal.err" || fail "the damaged cache file was not reported"
[ "$(sha256sum "$object" | cut -d' ' -f1)" = "$(basename "$object")" ] || fail "the cache file was not replaced"
"$INSTALLER" verify --bundle "$WORK/out-503/install" >/dev/null || fail "the healed build does not verify"
pass "a damaged cache file is detected, removed and downloaded again"

# 14. A partial file whose bytes are not the start of the real file (a disk error, another
# mirror's copy): the resumed download fails its digest, is downloaded once more whole, and
# completes.
digest=$(grep -A4 '^  kubectl:' "$MIRROR_ROOT/checksums.yaml" | awk '$1 == "arm64:" {print $2}')
mkdir -p "$WORK/c14/partial"
head -c 1000000 /dev/zero >"$WORK/c14/partial/$digest.part"
start_mirror "$MIRROR_ROOT"
"$BUILDER" build -f "$WORK/kubectl-arm64.yaml" -o "$WORK/out-badpart" --cache "$WORK/c14" "${MIRRORS[@]}" \
  >/dev/null 2>"$WORK/badpart.err" || { cat "$WORK/badpart.err"; fail "a bad partial file failed the build"; }
grep -q "kubectl 1.32.10 arm64: the resumed file did not verify; downloading it again whole" "$WORK/badpart.err" ||
  fail "the bad partial file was not reported: $(cat "$WORK/badpart.err")"
grep -q "^GET /dl.k8s.io/release/v1.32.10/bin/linux/arm64/kubectl 206 " "$WORK/server.log" || fail "the partial was not resumed first"
pass "a resumed file that fails its digest is downloaded again whole"
