#!/usr/bin/env bash
# Every node of every one of the 21 deployments (docs/site.md) goes through
# `install --role=ROLE --node=NODE --dry-run`, and the plan it prints is compared with the
# deployment's golden file, tests/site/golden-plans/<item>.txt. Each bundle carries its
# rendered site alone (kubexm-builder site, then pack), since the mirror here serves one
# Kubernetes release and the deployments span five: the plans differ between deployments in
# what the node's files say (ports, services and what each waits for, actions), which is
# what the golden files pin. Which binaries, packages and images a node takes from a full
# bundle is shown by the role tests on booted hosts (tests/e2e/).
# The preflight's findings are this machine's, so the golden files keep only the exit status
# (4: this machine has none of the nodes' addresses), and the test checks that a node of
# another arch is refused for it. After a deliberate change, run with KUBEXM_UPDATE_GOLDEN=1
# and read the diff.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/topologies.sh"

GOLDEN=$KUBEXM_SOURCE/tests/site/golden-plans
mkdir -p "$WORK/plans"
[ "$(uname -m)" = x86_64 ] || fail "the golden plans are an amd64 host's; this is $(uname -m)"

# bundle.yaml of a bundle that carries a site and nothing else, from the builder's own
# account of the site (site --check --json).
site_bundle_yaml() { # SITE-JSON APISERVER-PORT
  python3 - "$1" "$2" <<'PY'
import json, sys
site = json.load(open(sys.argv[1]))
print(f"name: {site['site']}\nversion: 1.0.0\narches: [amd64, arm64]\nos_profiles: [debian-12]")
print("roles: [master, worker, etcd, lb]")
print(f"site:\n  name: {site['site']}\n  deployment: {site['deployment']}\n  apiserver_port: {sys.argv[2]}\n  nodes:")
for host in site["hosts"]:
    print(f"    - {{name: {host['name']}, address: {host['address']}, arch: {host['arch']}, "
          f"roles: [{', '.join(host['roles'])}]}}")
PY
}

# The plan a node prints, without what depends on this run or this machine: the bundle's
# digest (its keys are made anew each run) and the preflight's findings.
normalise() {
  sed -E -e 's/\(([0-9a-f]{16})\)$/(DIGEST)/' -e 's/bundle-[0-9a-f]{16}/bundle-DIGEST/' \
    -e 's/^(  preflight +)(checked|failed) .*/\1checked    (this machine'"'"'s findings)/'
}

[ ! -e /var/lib/kubexm ] || fail "this machine has /var/lib/kubexm: the dry runs would read its journal"
plans=0
for item in $KUBEXM_TOPOLOGY_ITEMS; do
  dir=$WORK/$item
  mkdir -p "$dir/tree/site"
  write_topology "$item" "$dir/tree/site/site.yaml"
  "$BUILDER" -q site -f "$dir/tree/site/site.yaml" --check --json >"$dir/site.json" || fail "$item: site --check failed"
  "$BUILDER" -q site -f "$dir/tree/site/site.yaml" -o "$dir/rendered" --key-algorithm ecdsa || fail "$item: site -o failed"
  cp -a "$dir/rendered/nodes" "$dir/tree/site/nodes"
  port=$(grep -q 'mode: external' "$dir/tree/site/site.yaml" && echo 8443 || echo 6443)
  site_bundle_yaml "$dir/site.json" "$port" >"$dir/tree/bundle.yaml"
  "$BUILDER" -q pack --dir "$dir/tree" -o "$dir/out" --installer "$INSTALLER" --source-date-epoch 1700000000 ||
    fail "$item: pack failed"
  {
    echo "# $(deployment_id "$item")"
    while read -r node role arch; do
      set +e
      "$INSTALLER" --bundle "$dir/out/install" -q --role="$role" --node="$node" --dry-run >"$dir/$node.out" 2>"$dir/$node.err"
      status=$?
      set -e
      # 4: the preflight refuses this machine (it is not the node), and says so after the plan.
      [ "$status" = 0 ] || [ "$status" = 4 ] || { cat "$dir/$node.err"; fail "$item: the dry run of $node exited $status"; }
      grep -q '^dry run: nothing was changed' "$dir/$node.out" || fail "$item: $node's dry run printed no plan"
      if [ "$arch" != amd64 ]; then
        grep -q "node $node is $arch in the site, this host is amd64" "$dir/$node.err" ||
          { cat "$dir/$node.err"; fail "$item: the dry run of $node ($arch) on an amd64 host does not say so"; }
      fi
      echo
      echo "\$ install --role=$role --node=$node --dry-run   # exit $status"
      normalise <"$dir/$node.out"
      plans=$((plans + 1))
    done < <(python3 -c '
import json, sys
for host in json.load(open(sys.argv[1]))["hosts"]:
    roles = host["roles"]
    role = "master" if "master" in roles else roles[0]
    print(host["name"], role, host["arch"])' "$dir/site.json")
  } >"$WORK/plans/$item.txt"
  # Every node's plan names its node.yaml's services and actions, and no step of it failed.
  if grep -E '^  [a-z-]+ +failed' "$WORK/plans/$item.txt" | grep -v '^  preflight'; then
    fail "$item: a step other than the preflight failed in a dry run"
  fi
done
[ ! -e /var/lib/kubexm ] || fail "a dry run made /var/lib/kubexm"
pass "$plans dry runs on the nodes of the 21 deployments, each printing its plan and changing nothing"

if [ -n "${KUBEXM_UPDATE_GOLDEN:-}" ]; then
  rm -rf "$GOLDEN"
  cp -r "$WORK/plans" "$GOLDEN"
  pass "golden plans rewritten in $GOLDEN: read the diff before committing"
  exit 0
fi
diff -ru "$GOLDEN" "$WORK/plans" || fail "the plans differ from the golden files (tests/site/golden-plans); if the change is meant, rerun with KUBEXM_UPDATE_GOLDEN=1 and commit the new files"
pass "every node's plan matches its golden file"
