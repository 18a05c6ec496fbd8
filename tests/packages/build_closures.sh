#!/usr/bin/env bash
# kubexm-builder build with os-profiles debian-12 (the real Debian 12 metadata and packages)
# and rocky-9 (an rpm repository set built with rpmbuild and createrepo_c), amd64 and arm64:
# the lock holds every package of every closure, each checked against the mirror; the bundle
# lays them out with indices of its own that apt and dnf accept; the closures are the ones
# apt and dnf compute on the same repositories; a rebuild from the lock needs no network.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

start_package_mirrors
packages_manifest "$WORK/site.yaml"
CACHE="$WORK/cache"

# 1. The build.
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$CACHE" "${MIRRORS[@]}" \
  >"$WORK/build.out" 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed"; }
LOCK="$WORK/out/kubexm.lock"
"$INSTALLER" extract --bundle "$WORK/out/install" "$WORK/x" >/dev/null 2>&1 || fail "the bundle does not extract"
pass "built a bundle with OS packages for debian-12 and rocky-9, amd64 and arm64"

# 2. The lock: four package sets; every package is the mirror's file, byte for byte; every
# role's closure is in its set; the metadata is recorded with its digests; and the bundle
# holds exactly those files, with indices that describe them.
python3 - "$LOCK" "$WORK/x" "$DEB_MIRROR_ROOT" "$RPM_REPO_ROOT" <<'EOF' || fail "the lock or the bundle's package directories are wrong"
import gzip, hashlib, json, os, re, sys
lock, root, deb_root, rpm_root = sys.argv[1:]
lock = json.load(open(lock))
sets = {(s["profile"], s["arch"]): s for s in lock["package_sets"]}
assert set(sets) == {(p, a) for p in ("debian-12", "rocky-9") for a in ("amd64", "arm64")}, sets.keys()
sha = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()
for (profile, arch), s in sets.items():
    mirror = deb_root if profile == "debian-12" else rpm_root
    assert s["closure"] == "minimal" and s["base"], profile
    kinds = {m["kind"] for m in s["metadata"]}
    assert kinds == ({"release", "packages"} if profile == "debian-12" else {"repomd", "primary", "filelists", "group"}), kinds
    for m in s["metadata"]:
        local = os.path.join(mirror, m["url"].split("mirrors.aliyun.com/", 1)[1])
        assert sha(local) == m["sha256"] and os.path.getsize(local) == m["size"], m["url"]
    d = os.path.join(root, s["dir"] if "dir" in s else f"packages/{s['os']}/{s['version']}/{arch}")
    files = {p["file"] for p in s["packages"]}
    for p in s["packages"]:
        local = os.path.join(mirror, p["url"].split("mirrors.aliyun.com/", 1)[1])
        assert sha(local) == p["sha256"] and os.path.getsize(local) == p["size"], p["url"]
        assert sha(os.path.join(d, p["file"])) == p["sha256"], p["file"]
    for role in ("master", "worker", "etcd", "lb"):
        assert set(s["roles"][role]["install"]) <= files, role
        assert s["roles"][role]["relies_on"], role
    on_disk = set(os.listdir(d)) - {"Packages", "Release", "repodata", "kubexm-packages.json"}
    assert on_disk == files, on_disk ^ files
    if profile == "debian-12":
        index = open(os.path.join(d, "Packages")).read()
        listed = re.findall(r"^Filename: (.*)$", index, re.M)
        assert sorted(listed) == sorted(files), "Packages does not list exactly the bundle's files"
        for stanza in index.strip().split("\n\n"):
            f = re.search(r"^Filename: (.*)$", stanza, re.M).group(1)
            assert re.search(r"^SHA256: (.*)$", stanza, re.M).group(1) == sha(os.path.join(d, f)), f
        release = open(os.path.join(d, "Release")).read()
        assert sha(os.path.join(d, "Packages")) in release
    else:
        repomd = open(os.path.join(d, "repodata/repomd.xml")).read()
        for href, digest in zip(re.findall(r'href="([^"]+)"', repomd), re.findall(r'<checksum type="sha256">([0-9a-f]+)<', repomd)):
            assert sha(os.path.join(d, href)) == digest, href
        primary = open(os.path.join(d, "repodata/primary.xml")).read()
        assert sorted(re.findall(r'<location href="([^"]+)"', primary)) == sorted(files)
    print(f"{profile} {arch}: {len(files)} packages checked")
EOF
pass "the lock names every package exactly; the bundle carries them with matching indices"

# 3. The rpm closures are dnf's: from an empty system (closure: full) and, for the minimal
# closure, over a root where dnf installed the mandatory packages of the core group.
for arch in x86_64 aarch64; do
  kubexm_arch=$([ "$arch" = x86_64 ] && echo amd64 || echo arm64)
  dnf_conf "$WORK/dnf-$arch.conf" "$arch"
  mkdir -p "$WORK/core-$arch"
  dnf -c "$WORK/dnf-$arch.conf" --installroot="$WORK/core-$arch" --releasever=9 --forcearch="$arch" -y -q \
    --setopt=group_package_types=mandatory group install core >"$WORK/core.log" 2>&1 ||
    { cat "$WORK/core.log"; fail "dnf could not install the core group for $arch"; }
  names=$(python3 -c "import json,sys; s=[s for s in json.load(open(sys.argv[1]))['package_sets'] if s['profile']=='rocky-9'][0]; print(' '.join(s['roles']['worker']['requested']))" "$LOCK")
  # shellcheck disable=SC2086
  dnf_closure "$WORK/dnf-$arch.conf" "$arch" "$WORK/core-$arch" $names >"$WORK/dnf-$arch.txt"
  lock_closure "$LOCK" rocky-9 "$kubexm_arch" worker >"$WORK/ours-$arch.txt"
  diff "$WORK/dnf-$arch.txt" "$WORK/ours-$arch.txt" || fail "the rocky-9 $arch worker closure is not dnf's"
  [ -s "$WORK/ours-$arch.txt" ] || fail "empty closure"
  # The bundle's own repodata is enough for dnf to install the role over the core group.
  dnf_conf "$WORK/bundle-$arch.conf" "$arch" "$WORK/x/packages/rocky/9/$kubexm_arch"
  # shellcheck disable=SC2086
  dnf_closure "$WORK/bundle-$arch.conf" "$arch" "$WORK/core-$arch" $names >"$WORK/bundle-$arch.txt"
  diff "$WORK/dnf-$arch.txt" "$WORK/bundle-$arch.txt" || fail "dnf resolves another closure from the bundle's repodata"
done
# closure: full, from an empty system, on x86_64.
"$BUILDER" -q closure -f "$WORK/site.yaml" --closure full --json --cache "$CACHE" "${MIRRORS[@]}" >"$WORK/full.json" ||
  fail "closure --closure full failed"
mkdir -p "$WORK/empty"
# shellcheck disable=SC2086
dnf_closure "$WORK/dnf-x86_64.conf" x86_64 "$WORK/empty" $names >"$WORK/dnf-full.txt"
python3 -c "
import json, sys
s = [s for s in json.load(open(sys.argv[1])) if s['profile'] == 'rocky-9' and s['arch'] == 'amd64'][0]
assert s['closure'] == 'full' and not s['base'] and not s['roles']['worker']['relies_on']
files = {p['file']: p for p in s['packages']}
print('\n'.join(sorted(f\"{files[f]['name']}-{files[f]['evr']}.{files[f]['arch']}\" for f in s['roles']['worker']['install'])))
" "$WORK/full.json" >"$WORK/ours-full.txt" || fail "the full closure is not an empty-system closure"
diff "$WORK/dnf-full.txt" "$WORK/ours-full.txt" || fail "the full rocky-9 closure is not dnf's on an empty root"
pass "closure --closure full: rocky-9 x86_64 worker from an empty system is dnf's ($(wc -l <"$WORK/ours-full.txt") packages)"
pass "rocky-9 closures over the core group are dnf's, on x86_64 ($(wc -l <"$WORK/ours-x86_64.txt")) and aarch64 ($(wc -l <"$WORK/ours-aarch64.txt")), and the bundle's repodata serves them"

# 4. The deb closure is apt's: in a debootstrap minbase root pointed at the same mirror,
# `apt-get install --simulate` of the worker's packages installs exactly the lock's closure.
ensure_minbase_root "$WORK/minbase"
apt_in_root "$WORK/minbase" update >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update"; }
names=$(python3 -c "import json,sys; s=[s for s in json.load(open(sys.argv[1]))['package_sets'] if s['profile']=='debian-12' and s['arch']=='amd64'][0]; print(' '.join(s['roles']['worker']['requested']))" "$LOCK")
# shellcheck disable=SC2086
apt_in_root "$WORK/minbase" install --simulate --no-install-recommends $names >"$WORK/apt-sim.txt" 2>&1 ||
  { cat "$WORK/apt-sim.txt"; fail "apt could not resolve the worker packages"; }
sed -nE 's/^Inst ([^ ]+) (\[[^]]*\] )?\(([^ ]+) .*\[([a-z0-9]+)\]\)( \[[^]]*\])?$/\1-\3.\4/p' "$WORK/apt-sim.txt" | sort >"$WORK/apt.txt"
lock_closure "$LOCK" debian-12 amd64 worker >"$WORK/ours-deb.txt"
[ -s "$WORK/apt.txt" ] || { cat "$WORK/apt-sim.txt"; fail "no Inst lines from apt"; }
diff "$WORK/apt.txt" "$WORK/ours-deb.txt" || fail "the debian-12 worker closure is not apt's"
pass "the debian-12 amd64 worker closure over minbase is apt's ($(wc -l <"$WORK/apt.txt") packages)"

# 5. From the lock and the warm cache, with every server stopped: the same bundle, byte for byte.
stop_mirror
SOURCE_DATE_EPOCH=1700000000 "$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out2" --lock "$LOCK" \
  --cache "$CACHE" "${MIRRORS[@]}" >/dev/null 2>"$WORK/rebuild.err" || { cat "$WORK/rebuild.err"; fail "rebuild"; }
cmp "$WORK/out/kubexm-dist-pkgs-1.0.tar.zst" "$WORK/out2/kubexm-dist-pkgs-1.0.tar.zst" || fail "the rebuild differs"
pass "rebuilt byte-identical from the lock with no server"
