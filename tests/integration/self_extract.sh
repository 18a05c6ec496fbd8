# The self-extracting install: it finds its payload through /proc/self/exe, survives being
# copied, explains a strip or a cut, and falls back to an archive beside it.
source "$(dirname "$0")/../lib.sh"

pack_demo "$WORK/tree" "$WORK/out" --size 3M
cp "$WORK/out/install" "$WORK/usb-install"
"$WORK/usb-install" -q verify | grep -q ": OK: bundle demo" || fail "install verify on itself"
pass "install verify on the self-extracting file"

"$WORK/usb-install" -q extract "$WORK/x" >/dev/null
(cd "$WORK/x" && sha256sum -c --quiet SHA256SUMS) || fail "sha256sum -c after self-extraction"
pass "self-extraction verified by coreutils"

"$WORK/usb-install" info --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["self_extracting"] and d["trailer"]["bundle_digest"] == d["digest"]
assert d["trailer"]["payload_offset"] == d["payload"]["offset"]
' || fail "info --json does not describe the trailer"
pass "info --json shows the trailer"

cp "$WORK/out/install" "$WORK/stripped"
strip "$WORK/stripped"
expect_failure 3 "no bundle attached.*strip" "$WORK/stripped" verify
cp "$WORK/out/install" "$WORK/objcopied"
objcopy --strip-all "$WORK/objcopied"
expect_failure 3 "no bundle attached" "$WORK/objcopied" info
pass "strip and objcopy --strip-all: 'no bundle attached'"

size=$(stat -c %s "$WORK/out/install")
head -c $((size - 1000)) "$WORK/out/install" >"$WORK/cut"
chmod +x "$WORK/cut"
expect_failure 3 "cut short or damaged" "$WORK/cut" verify
head -c $((size - 64)) "$WORK/out/install" >"$WORK/cut-trailer"
chmod +x "$WORK/cut-trailer"
expect_failure 3 "no bundle attached" "$WORK/cut-trailer" verify
pass "a cut file and a cut trailer are explained"

# Two files on the stick: a bare installer finds the archive beside it.
mkdir "$WORK/two"
cp "$WORK/stripped" "$WORK/two/install"
cp "$WORK"/out/kubexm-dist-*.tar.zst "$WORK/two/"
"$WORK/two/install" -q verify | grep -q "kubexm-dist-demo-0.1.0.tar.zst: OK" || fail "install did not use the archive beside it"
cp "$WORK/two/kubexm-dist-demo-0.1.0.tar.zst" "$WORK/two/kubexm-dist-other-1.tar.zst"
expect_failure 1 "several bundles beside it" "$WORK/two/install" verify
"$WORK/two/install" --bundle "$WORK/two/kubexm-dist-demo-0.1.0.tar.zst" -q verify >/dev/null || fail "--bundle"
pass "archive beside the installer, and --bundle"

# Packing with an install that already carries a bundle replaces the payload, not appends.
"$BUILDER" -q pack --dir "$WORK/tree" -o "$WORK/re" --installer "$WORK/out/install" --source-date-epoch 1700000000 >/dev/null
cmp "$WORK/re/install" "$WORK/out/install" || fail "repacking onto a packed install is not identical"
pass "a packed install can serve as the stub again"
