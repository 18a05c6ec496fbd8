#!/usr/bin/env bash
# On a real Debian 12 host made by `debootstrap --variant=minbase bookworm` (cached), with the
# shipped debian-12 profile and the archive's real metadata:
# - the base set the builder models is exactly the host's installed packages, name, version
#   and arch;
# - every shipped role's minimal closure is what `apt-get install --simulate
#   --no-install-recommends` of the role's packages installs there from the same archive,
#   name and version. A package apt installs that the closure does not carry must be an
#   upgrade of one the host has, which apt chose by its policy and nothing needs: it is
#   listed, and with that policy off (APT::Get::Upgrade-By-Source-Package, which upgrades
#   every installed package built from the same source as a new one) apt's answer is the
#   closure exactly.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/packages/fixtures.sh"

start_package_mirrors
ensure_minbase_root "$WORK/minbase"
printf 'name: apt\nversion: "1"\nkubernetes: 1.32.10\narches: [amd64]\nos_profiles: [debian-12]\ncomponents: [kubectl]\n' \
  >"$WORK/m.yaml"
"$BUILDER" -q closure -f "$WORK/m.yaml" --json --cache "$WORK/cache" "${MIRRORS[@]}" >"$WORK/closure.json" \
  2>"$WORK/closure.err" || { cat "$WORK/closure.err"; fail "closure failed"; }

# A warm run asks for InRelease conditionally (304) and loads the repositories and the base
# from their .solv copies; damaged copies are made again from the indices; all three runs
# give the same answer.
: >"$WORK/server.log"
"$BUILDER" -v closure -f "$WORK/m.yaml" --json --cache "$WORK/cache" "${MIRRORS[@]}" >"$WORK/warm.json" \
  2>"$WORK/warm.err" || { cat "$WORK/warm.err"; fail "warm closure failed"; }
cmp -s "$WORK/closure.json" "$WORK/warm.json" || fail "the warm run gives another answer"
[ "$(grep -c 'InRelease 304' "$WORK/server.log")" = 3 ] || { cat "$WORK/server.log"; fail "InRelease was not revalidated (304)"; }
! grep -q 'Packages' "$WORK/server.log" || { cat "$WORK/server.log"; fail "the warm run asked for an index again"; }
grep -q "packages loaded from .solv copies" "$WORK/warm.err" || { cat "$WORK/warm.err"; fail "the .solv copies were not used"; }
for f in "$WORK"/cache/solv/*.solv; do printf 'damaged' >"$f"; done
"$BUILDER" closure -f "$WORK/m.yaml" --json --cache "$WORK/cache" "${MIRRORS[@]}" >"$WORK/mended.json" \
  2>"$WORK/mended.err" || { cat "$WORK/mended.err"; fail "closure with damaged .solv copies failed"; }
grep -q "reading the indices instead" "$WORK/mended.err" || { cat "$WORK/mended.err"; fail "the damage was not noticed"; }
grep -q "solving the base set again" "$WORK/mended.err" || { cat "$WORK/mended.err"; fail "the damaged base was not noticed"; }
cmp -s "$WORK/closure.json" "$WORK/mended.json" || fail "with damaged .solv copies the answer differs"
pass "a warm closure revalidates InRelease (304), loads its .solv copies, and mends damaged ones"

# 1. The modelled base is the minbase host.
chroot "$WORK/minbase" dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' | sort >"$WORK/root.txt"
python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[0]
for p in sorted(s['base_system'], key=lambda p: p['name']): print(p['name'], p['evr'], p['arch'])
" "$WORK/closure.json" | sort >"$WORK/base.txt"
diff "$WORK/root.txt" "$WORK/base.txt" >"$WORK/base.diff" ||
  { cat "$WORK/base.diff"; fail "the modelled base set is not the minbase host's packages (< host, > model)"; }
pass "the modelled debian-12 base is the minbase host's $(wc -l <"$WORK/root.txt") packages, at their versions"

# 2. Each role's closure is apt's.
apt_in_root "$WORK/minbase" update >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update"; }
# inst_lines FILE: "name version [old-version]" of apt's Inst lines.
inst_lines() {
  sed -nE 's/^Inst ([^ ]+) (\[([^]]*)\] )?\(([^ ]+) .*$/\1 \4 \3/p' "$1" | sort
}
for role in master worker etcd lb; do
  names=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[0]['roles'][sys.argv[2]]['requested']))" \
    "$WORK/closure.json" "$role")
  # shellcheck disable=SC2086
  apt_in_root "$WORK/minbase" install --simulate --no-install-recommends $names >"$WORK/sim-$role.txt" 2>&1 ||
    { cat "$WORK/sim-$role.txt"; fail "apt could not resolve the $role packages"; }
  inst_lines "$WORK/sim-$role.txt" >"$WORK/apt-$role.txt"
  [ -s "$WORK/apt-$role.txt" ] || { cat "$WORK/sim-$role.txt"; fail "no Inst lines from apt for $role"; }
  python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[0]
files = {p['file']: p for p in s['packages']}
for f in sorted(s['roles'][sys.argv[2]]['install']): print(files[f]['name'], files[f]['evr'])
" "$WORK/closure.json" "$role" | sort >"$WORK/ours-$role.txt"
  python3 - "$WORK/apt-$role.txt" "$WORK/ours-$role.txt" "$role" >"$WORK/policy-$role.txt" <<'PY' || fail "the debian-12 $role closure is not apt's"
import sys
apt = {}
for line in open(sys.argv[1]):
    name, version, *old = line.split()
    apt[name] = (version, old[0] if old else None)
ours = dict(line.split() for line in open(sys.argv[2]))
role = sys.argv[3]
bad = [f"  only in ours: {n} {v}" for n, v in sorted(ours.items()) if n not in apt]
bad += [f"  version: ours {n} {v}, apt {apt[n][0]}" for n, v in sorted(ours.items()) if n in apt and apt[n][0] != v]
bad += [f"  only apt's: {n} {v} (a new package)" for n, (v, old) in sorted(apt.items()) if n not in ours and old is None]
if bad:
    print(f"{role}: differences from apt:", *bad, sep="\n", file=sys.stderr)
    sys.exit(1)
for n, (v, old) in sorted(apt.items()):
    if n not in ours:
        print(n, old, v)
PY
  if [ -s "$WORK/policy-$role.txt" ]; then
    echo "$role: apt also upgrades by policy (nothing needs it): $(awk '{printf "%s %s -> %s; ", $1, $2, $3}' "$WORK/policy-$role.txt")"
    # shellcheck disable=SC2086
    apt_in_root "$WORK/minbase" install --simulate --no-install-recommends \
      -o APT::Get::Upgrade-By-Source-Package=false $names >"$WORK/sim-$role.txt" 2>&1 ||
      { cat "$WORK/sim-$role.txt"; fail "apt could not resolve the $role packages without its source upgrades"; }
    inst_lines "$WORK/sim-$role.txt" | cut -d' ' -f1,2 >"$WORK/apt-$role.txt"
    diff "$WORK/apt-$role.txt" "$WORK/ours-$role.txt" ||
      fail "debian-12 $role: without its upgrades by source, apt installs other packages than the closure"
  fi
  pass "debian-12 $role: the closure is apt's ($(wc -l <"$WORK/ours-$role.txt") packages, names and versions)"
done
