#!/usr/bin/env bash
# A manifest that names a site (site: FILE) builds a bundle that carries the site: its
# cluster's images come from the site's shape, site/nodes/<node>/ holds every node's
# rendered files with their modes, and the PKI kept beside the output makes a rebuild carry
# the same keys. A site the bundle cannot serve (an arch, an OS, a Kubernetes version it
# does not carry, a cluster: section that says otherwise) is refused before anything is
# fetched, with the reason.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"

cat >"$WORK/site.yaml" <<'SITE'
name: plant
kubernetes: {type: kubeadm, version: 1.32.10}
etcd: {type: kubeadm}
network: {plugin: calico, nodelocaldns: true}
loadbalancer: {enabled: true, mode: internal, type: haproxy}
hosts:
  - {name: master1, address: 10.30.0.11/24, os: debian-12, roles: [master, etcd]}
  - {name: master2, address: 10.30.0.12/24, os: debian-12, roles: [master, etcd]}
  - {name: master3, address: 10.30.0.13/24, os: rocky-9, roles: [master, etcd]}
  - {name: worker1, address: 10.30.0.21/24, arch: arm64, os: rocky-9, roles: [worker]}
SITE

# 1. Refusals, before anything is fetched (no mirror and no registry are running yet).
refused() { # PATTERN SITE-EDIT MANIFEST-EDIT [MANIFEST-LINES...]
  local pattern=$1 edit=$2 manifest_edit=$3
  shift 3
  sed "$edit" "$WORK/site.yaml" >"$WORK/bad-site.yaml"
  binaries_manifest "$WORK/bad.raw" "site: bad-site.yaml" "$@"
  sed "$manifest_edit" "$WORK/bad.raw" >"$WORK/bad.yaml"
  expect_failure 2 "$pattern" "$BUILDER" build -f "$WORK/bad.yaml" -o "$WORK/bad-out" --cache "$WORK/cache"
}
ensure_mirror
refused "site: host worker1 is arm64, and the bundle carries amd64 only; add arm64 to arches" "s/^//" \
  "s/^arches: .*/arches: [amd64]/"
refused "site: host master3 runs ubuntu-22.04, which is not among the bundle's os_profiles \(debian-12, rocky-9\)" \
  "s/os: rocky-9, roles: \[master/os: ubuntu-22.04, roles: [master/" "s/^//"
refused "site: bad-site.yaml is for Kubernetes 1.32.4, the bundle carries 1.32.10" "s/1.32.10/1.32.4/" "s/^//"
refused "cluster: differs from the site bad-site.yaml's cluster" "s/^//" "s/^//" "cluster: {type: kubexm, etcd: kubexm}"
refused "bad-site.yaml: line 5: loadbalancer: mode internal takes type haproxy or nginx" "s/type: haproxy/type: kubexm-kh/" "s/^//"
[ ! -e "$WORK/bad-out" ] || fail "a refused build left $WORK/bad-out"
pass "a site the bundle cannot serve is refused with the reason, and nothing is written"

# 2. The build: images from the site's shape, the site carried under site/.
start_mirror "$MIRROR_ROOT"
start_image_registry
binaries_manifest "$WORK/manifest.yaml" "site: site.yaml"
build() {
  SOURCE_DATE_EPOCH=1700000000 "$BUILDER" build -f "$WORK/manifest.yaml" --cache "$WORK/cache" "${MIRRORS[@]}" \
    "${REGISTRY_OPTIONS[@]}" "$@" >"$WORK/build.out" 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed: $*"; }
}
build -o "$WORK/out"
grep -q "site plant: 4 nodes rendered in $WORK/out/plant.site" "$WORK/build.err" || { cat "$WORK/build.err"; fail "no site line"; }
python3 -c 'import json,sys; refs=[i["ref"] for i in json.load(open(sys.argv[1]))["images"]]; assert "docker.io/library/haproxy:3.0.5-alpine" in refs and len(refs) == 12, refs' \
  "$WORK/out/kubexm.lock" || fail "the lock does not hold the images of the site's cluster"
"$INSTALLER" --bundle "$WORK/out/install" extract "$WORK/tree" >/dev/null || fail "the bundle does not extract"
cmp -s "$WORK/site.yaml" "$WORK/tree/site/site.yaml" || fail "site/site.yaml is not the site file"
for node in master1 master2 master3 worker1; do
  [ -f "$WORK/tree/site/nodes/$node/node.yaml" ] || fail "the bundle lacks $node's node.yaml"
done
(cd "$WORK/out/plant.site" && find nodes -type f -printf '%m %p\n' | sort) >"$WORK/rendered.txt"
(cd "$WORK/tree/site" && find nodes -type f -printf '%m %p\n' | sort) >"$WORK/carried.txt"
diff -u "$WORK/rendered.txt" "$WORK/carried.txt" || fail "the bundle's site/nodes differ from the rendering"
[ "$(stat -c %a "$WORK/tree/site/nodes/master1/etc/kubernetes/pki/ca.key")" = 600 ] || fail "a key lost its 0600 in the bundle"
"$INSTALLER" --bundle "$WORK/out/install" list --json | python3 -c '
import json, sys
modes = {m["path"]: m["mode"] for m in json.load(sys.stdin)}
assert modes["site/nodes/master2/etc/kubernetes/pki/sa.key"] == "0600", modes["site/nodes/master2/etc/kubernetes/pki/sa.key"]
' || fail "install list does not show the key as 0600"
grep -q 'sandbox = "registry.k8s.io/pause:3.10"' "$WORK/tree/site/nodes/worker1/etc/containerd/config.toml" ||
  fail "containerd's sandbox image is not the bundle's pause"
grep -q "image: docker.io/library/haproxy:3.0.5-alpine" "$WORK/tree/site/nodes/worker1/etc/kubernetes/manifests/kube-haproxy.yaml" ||
  fail "the haproxy static pod does not run the bundle's haproxy image"
"$INSTALLER" --bundle "$WORK/out/install" info | grep -q "^site: *4 nodes under site/nodes: master1, master2, master3, worker1$" ||
  fail "install info does not name the site's nodes"
"$INSTALLER" --bundle "$WORK/out/install" info --json |
  python3 -c 'import json,sys; assert json.load(sys.stdin)["site_nodes"] == ["master1", "master2", "master3", "worker1"]' ||
  fail "install info --json does not list the site's nodes"
pass "the bundle carries site/site.yaml and every node's files with their modes; configs name the bundle's images; info lists the nodes"

# 3. A rebuild keeps the site's keys: the same CA in the bundle, and the tree is identical.
first=$(sha256sum "$WORK/tree/site/nodes/master1/etc/kubernetes/pki/ca.crt" | cut -c1-64)
build -o "$WORK/out"
rm -rf "$WORK/tree2"
"$INSTALLER" --bundle "$WORK/out/install" extract "$WORK/tree2" >/dev/null
[ "$(sha256sum "$WORK/tree2/site/nodes/master1/etc/kubernetes/pki/ca.crt" | cut -c1-64)" = "$first" ] ||
  fail "a rebuild made a new CA"
diff -r "$WORK/tree/site" "$WORK/tree2/site" >/dev/null || fail "a rebuild changed the site's files"
build -o "$WORK/out" --rotate
rm -rf "$WORK/tree3"
"$INSTALLER" --bundle "$WORK/out/install" extract "$WORK/tree3" >/dev/null
[ "$(sha256sum "$WORK/tree3/site/nodes/master1/etc/kubernetes/pki/ca.crt" | cut -c1-64)" != "$first" ] ||
  fail "--rotate kept the CA"
pass "a rebuild carries the same keys and files; --rotate makes new ones"
