# Every hostile bundle is refused by `verify` and `extract` with exit 3 and a message naming
# the problem; extraction writes nothing outside its target and leaves the target as it was.
source "$(dirname "$0")/../lib.sh"

pack_demo "$WORK/tree" "$WORK/out" --size 2M
archive=$(ls "$WORK"/out/kubexm-dist-*.tar.zst)
python3 "$(dirname "$0")/make_hostile.py" "$archive" "$WORK/out/install" "$WORK/hostile" "$WORK/t/absolute/abs-escape.txt"

# A directory tree with one file, fingerprinted to prove nothing changed.
fingerprint() { (cd "$1" && find . -printf '%p %s %m %l\n' | sort && find . -type f -exec sha256sum {} + | sort); }

count=0
while IFS=$'\t' read -r file pattern; do
  bundle="$WORK/hostile/$file"
  name=${file%.*}
  name=${name%.tar}
  case_dir="$WORK/t/$name"
  mkdir -p "$case_dir/outside" "$case_dir/existing"
  echo "victim" >"$case_dir/outside/victim"
  before=$(fingerprint "$case_dir")

  expect_failure 3 "$pattern" "$INSTALLER" --bundle "$bundle" verify
  expect_failure 3 "$pattern" "$BUILDER" verify "$bundle"
  expect_failure 3 "$pattern" "$INSTALLER" --bundle "$bundle" -q extract "$case_dir/target"
  [ ! -e "$case_dir/target" ] || fail "$name: a failed extraction created the target"
  expect_failure 3 "$pattern" "$INSTALLER" --bundle "$bundle" -q extract "$case_dir/existing"
  [ "$(fingerprint "$case_dir")" = "$before" ] || fail "$name: something changed next to the target"
  [ ! -e "$WORK/t/absolute/abs-escape.txt" ] || fail "$name: the absolute path was written"
  [ ! -e "$WORK/escape.txt" ] || fail "$name: ../ was written"
  pass "$name: exit 3, /$pattern/, nothing written"
  count=$((count + 1))
done <"$WORK/hostile/cases.tsv"

[ "$count" -ge 20 ] || fail "only $count hostile cases ran"
echo "$count hostile cases refused"
