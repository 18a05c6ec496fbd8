#!/usr/bin/env bash
# kubexm-builder build of a Kubernetes 1.32 manifest for amd64 and arm64 against a local copy
# of the real upstreams: every binary verified, arch-checked and listed in the lock; a second
# build from the lock and the warm cache with the mirror stopped; resolve, fetch and a stale lock.
source "$(dirname "$0")/../lib.sh"

ensure_mirror
# GitHub answers release downloads with a redirect to its object store: so does the mirror.
start_mirror "$MIRROR_ROOT" --redirect '^/github\.com/.*/releases/download/'
binaries_manifest "$WORK/site.yaml"
CACHE="$WORK/cache"

# 1. A clean build: resolve, download, verify, arch-check, pack.
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out1" --cache "$CACHE" \
  "${MIRRORS[@]}" >"$WORK/build1.out" 2>"$WORK/build1.err" || { cat "$WORK/build1.err"; fail "clean build failed"; }
[ -f "$WORK/out1/kubexm.lock" ] || fail "build did not write OUTDIR/kubexm.lock"
requests=$(grep -c '^GET ' "$WORK/server.log")
[ "$requests" -gt 20 ] || fail "expected the clean build to download from the mirror, saw $requests requests"
grep -q "^GET /github.com/etcd-io/etcd/releases/download/v3.5.25/etcd-v3.5.25-linux-arm64.tar.gz 302 " "$WORK/server.log" &&
  grep -q "^GET /_objects/github.com/etcd-io/etcd/releases/download/v3.5.25/etcd-v3.5.25-linux-arm64.tar.gz 200 " \
    "$WORK/server.log" || fail "the GitHub downloads were not redirected and followed"
pass "clean build from the mirror ($requests requests)"

# 2. The bundle: every binary of every component for both arches, identical to what the
# mirror served, of the right ELF machine, and listed in the lock with its digest.
"$INSTALLER" verify --bundle "$WORK/out1/install" >/dev/null || fail "install verify refused the built bundle"
"$INSTALLER" extract --bundle "$WORK/out1/install" "$WORK/x" >/dev/null 2>&1 || fail "extract failed"
python3 - "$WORK/x" "$MIRROR_ROOT" <<'EOF' || fail "the bundle's binaries do not match the lock and the mirror"
import hashlib, json, os, sys
root, mirror = sys.argv[1], sys.argv[2]
lock = json.load(open(os.path.join(root, "kubexm.lock")))
machines = {"amd64": 62, "arm64": 183}
seen = set()
for a in lock["artifacts"]:
    upstream = os.path.join(mirror, a["url"].split("://", 1)[1])
    data = open(upstream, "rb").read()
    assert hashlib.sha256(data).hexdigest() == a["sha256"] and len(data) == a["size"], a["url"]
    for m in a["members"]:
        path = os.path.join(root, "bin", a["arch"], a["component"], a["version"], m["install"])
        body = open(path, "rb").read()
        assert hashlib.sha256(body).hexdigest() == m["sha256"], path
        assert body[:4] == b"\x7fELF" and int.from_bytes(body[18:20], "little") == machines[a["arch"]], path
        assert os.stat(path).st_mode & 0o111, path
        seen.add(os.path.relpath(path, root))
on_disk = {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(os.path.join(root, "bin")) for f in fs}
assert on_disk == seen, on_disk ^ seen
components = {a["component"] for a in lock["artifacts"]}
expected = {"kubelet", "kubeadm", "kubectl", "etcd", "containerd", "runc", "cni-plugins", "crictl", "helm", "calicoctl"}
assert components == expected, components
assert {a["arch"] for a in lock["artifacts"]} == {"amd64", "arm64"}
assert all(a["pin"] == "manifest" for a in lock["artifacts"])
print(f"{len(seen)} binaries checked")
EOF
grep -q 'components:' "$WORK/x/bundle.yaml" || fail "bundle.yaml does not record the components"
"$INSTALLER" info --bundle "$WORK/out1/install" | grep -q "component:    etcd 3.5.25 (amd64, arm64): etcd, etcdctl, etcdutl" ||
  fail "install info does not list etcd's binaries"
pass "every binary is in the lock, matches the mirror and has the right ELF machine"

# 3. From the lock and the warm cache with the mirror stopped: no network at all, and the
# same bundle byte for byte, even under a umask that would make the files private.
stop_mirror
(umask 077 && SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/site.yaml" --lock "$WORK/out1/kubexm.lock" \
  -o "$WORK/out2" --cache "$CACHE" "${MIRRORS[@]}" >/dev/null 2>"$WORK/build2.err") ||
  { cat "$WORK/build2.err"; fail "the build from lock and cache needed the (stopped) mirror"; }
grep -q "without resolving again" "$WORK/build2.err" || fail "the second build did not say it used the lock"
listing() { zstd -dc "$1" | tar -tv --full-time; }
cmp "$WORK/out1/kubexm-dist-demo-1.0.0.tar.zst" "$WORK/out2/kubexm-dist-demo-1.0.0.tar.zst" || {
  diff <(listing "$WORK/out1/kubexm-dist-demo-1.0.0.tar.zst") <(listing "$WORK/out2/kubexm-dist-demo-1.0.0.tar.zst") | head -60
  fail "a rebuild from the same lock is not byte-identical"
}
pass "rebuild from lock + cache with the mirror stopped (umask 077) is byte-identical"

# 3b. Without --lock, OUTDIR/kubexm.lock is the lock: building into the same OUTDIR again
# needs no network either.
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out1" --cache "$CACHE" "${MIRRORS[@]}" \
  >/dev/null 2>"$WORK/build3.err" || { cat "$WORK/build3.err"; fail "rebuilding into OUTDIR did not reuse its lock"; }
grep -q "building from $WORK/out1/kubexm.lock without resolving again" "$WORK/build3.err" || fail "OUTDIR's lock was not used"
pass "OUTDIR/kubexm.lock is reused by the next build"

# 3c. A lock no longer vouched for by the manifest's pins is refused: re-pinning a
# component must not ship the old bytes from an old lock.
sed 's/^\(      amd64: \)[0-9a-f]*$/\1'"$(printf '%064d' 0)"'/' "$WORK/site.yaml" >"$WORK/repinned.yaml"
expect_failure 2 "kubelet 1.32.10 amd64: the manifest pins 0{64}, the lock has [0-9a-f]{64}" \
  "$BUILDER" build -f "$WORK/repinned.yaml" --lock "$WORK/out1/kubexm.lock" -o "$WORK/out-repinned" --cache "$CACHE"
pass "a lock whose digests the manifest no longer pins is refused"

# 4. fetch --lock into an empty cache downloads everything once; a second fetch downloads nothing.
start_mirror "$MIRROR_ROOT"
"$BUILDER" fetch --lock "$WORK/out1/kubexm.lock" --cache "$WORK/cache2" "${MIRRORS[@]}" -j 3 2>"$WORK/fetch.err" ||
  { cat "$WORK/fetch.err"; fail "fetch --lock failed"; }
grep -q "20 files ready in $WORK/cache2 (0 were already there)" "$WORK/fetch.err" || fail "fetch did not download 20"
: >"$WORK/server.log"
"$BUILDER" fetch --lock "$WORK/out1/kubexm.lock" --cache "$WORK/cache2" "${MIRRORS[@]}" 2>"$WORK/fetch.err"
grep -q "(20 were already there)" "$WORK/fetch.err" || fail "the second fetch did not find the cache"
[ ! -s "$WORK/server.log" ] || fail "the second fetch still made requests: $(cat "$WORK/server.log")"
pass "fetch --lock fills the cache once"

# 5. resolve alone writes the same lock a build wrote; a lock that no longer matches the
# manifest is refused with the difference and the command that fixes it.
"$BUILDER" -q resolve -f "$WORK/site.yaml" -o "$WORK/resolved.lock" --cache "$CACHE" "${MIRRORS[@]}" >/dev/null
cmp "$WORK/resolved.lock" "$WORK/out1/kubexm.lock" || fail "resolve and build wrote different locks"
binaries_manifest "$WORK/changed.yaml" "versions: {crictl: 1.31.1}"
expect_failure 2 "not in the lock: crictl 1.31.1 amd64.*|kubexm-builder resolve -f" \
  "$BUILDER" build -f "$WORK/changed.yaml" --lock "$WORK/out1/kubexm.lock" -o "$WORK/out3" --cache "$CACHE"
grep -q "no longer in the manifest: crictl 1.32.0 arm64" "$WORK/stderr" || fail "the stale lock's extra entry is not named"
pass "resolve writes the build's lock; a stale lock is refused"
