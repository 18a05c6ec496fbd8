# Pack a generated tree and check the result with the standard tools: GNU tar lists it,
# coreutils verifies the extraction, and a second pack is byte-identical.
source "$(dirname "$0")/../lib.sh"

pack_demo "$WORK/tree" "$WORK/out" --size 6M
archive=$(ls "$WORK"/out/kubexm-dist-*.tar.zst)

(cd "$WORK/out" && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c on the pack outputs"
pass "outputs match their SHA256SUMS"

tar --zstd -tvf "$archive" >"$WORK/listing" || fail "GNU tar cannot list the archive"
head -3 "$WORK/listing" | awk '{print $6}' | tr '\n' ' ' | grep -q "^SHA256SUMS bundle.yaml bundle.index " ||
  fail "the archive does not start with SHA256SUMS, bundle.yaml, bundle.index: $(head -3 "$WORK/listing")"
awk '{print $2}' "$WORK/listing" | sort -u | grep -qv '^root/root$' && fail "an entry is not owned by root/root"
[ "$(awk '{print $4" "$5}' "$WORK/listing" | sort -u)" = "2023-11-14 22:13" ] || fail "mtimes are not all SOURCE_DATE_EPOCH"
pass "GNU tar lists $(wc -l <"$WORK/listing") entries, metadata first, root-owned, one mtime"

mkdir "$WORK/by-tar"
tar --zstd -xf "$archive" -C "$WORK/by-tar"
(cd "$WORK/by-tar" && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c inside a GNU tar extraction"
pass "sha256sum -c inside a GNU tar extraction"

"$INSTALLER" --bundle "$archive" -q extract "$WORK/x" >/dev/null
(cd "$WORK/x" && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c inside install extract"
diff -r "$WORK/by-tar" "$WORK/x" || fail "install extract and GNU tar disagree"
[ "$(stat -c %a "$WORK/x/site/nodes/node000/etc/kubernetes/pki/key0.key")" = 600 ] || fail "a private key lost mode 0600"
[ "$(stat -c %a "$WORK/x/binaries/amd64/kubelet")" = 755 ] || fail "an executable lost mode 0755"
pass "install extract matches GNU tar; modes kept"

"$INSTALLER" --bundle "$archive" extract "$WORK/x" >"$WORK/again" 2>/dev/null
grep -q "nothing changed" "$WORK/again" || fail "a second extract did not say it changed nothing"
pass "second extract: $(cat "$WORK/again")"

sleep 1.1
touch "$WORK/tree/bundle.yaml"
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q pack --dir "$WORK/tree" -o "$WORK/out2" -j 1 >/dev/null
cmp "$WORK/out/install" "$WORK/out2/install" || fail "repacking gave a different install"
cmp "$archive" "$WORK/out2/$(basename "$archive")" || fail "repacking gave a different archive"
pass "repack with another thread count and touched mtimes is byte-identical"

digest=$(sha256sum "$WORK/x/SHA256SUMS" | cut -d' ' -f1)
"$BUILDER" inspect --json "$archive" >"$WORK/inspect.json"
python3 - "$WORK/inspect.json" "$digest" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
assert data["digest"] == sys.argv[2], (data["digest"], sys.argv[2])
assert data["bundle"]["name"] == "demo" and data["bundle"]["format"] == 1
assert data["files"] > 100 and data["self_extracting"] is False
PY
pass "inspect --json reports the aggregate digest (SHA-256 of SHA256SUMS)"

"$INSTALLER" --bundle "$archive" list --json | python3 -c '
import json, sys
members = json.load(sys.stdin)
files = [m for m in members if m["kind"] == "file"]
assert all(len(m["sha256"]) == 64 for m in files)
assert any(m["mode"] == "0600" for m in files)
' || fail "list --json"
pass "list --json"

expect_failure 2 "run 'install --help'" "$INSTALLER" frobnicate
expect_failure 2 "required" "$INSTALLER" --bundle "$archive" extract
pass "usage errors exit 2"
