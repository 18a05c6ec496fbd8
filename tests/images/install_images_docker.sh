#!/usr/bin/env bash
# install images --runtime docker on an air-gapped host: a real dockerd with no network.
# The bundle's amd64 images are loaded under their references, each with the image ID (the
# config digest) the registry's amd64 manifest names (an image named by digest, which docker
# cannot tag, by its ID alone); a container runs from one; a second run loads nothing; an
# image removed from docker is the only one loaded again.
source "$(dirname "$0")/../lib.sh"
source "$KUBEXM_SOURCE/tests/images/images_lib.sh"
source "$KUBEXM_SOURCE/tests/images/docker.sh"

[ "$(uname -m)" = x86_64 ] || fail "this test expects an amd64 machine"
ensure_mirror
start_mirror "$MIRROR_ROOT"
start_image_registry
pinned="docker.io/library/amd64-only@$(image_index_digest docker.io/library/amd64-only:1.0)"
images_manifest "$WORK/both.yaml" "components: [kubectl]" "images: [$pinned]"
{ grep -v '^arches:' "$WORK/both.yaml"; echo "arches: [amd64]"; } >"$WORK/site.yaml"
"$BUILDER" -q build -f "$WORK/site.yaml" -o "$WORK/out" --cache "$WORK/cache" "${MIRRORS[@]}" "${REGISTRY_OPTIONS[@]}" \
  >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err"; fail "the build failed"; }
# What docker must end up with: each image's amd64 config digest, as the registry says.
python3 - "$WORK/out/kubexm.lock" "$REGISTRY" >"$WORK/expected" <<'PY' || fail "could not read the registry"
import json, subprocess, sys
lock, registry = sys.argv[1:]
for image in json.load(open(lock))["images"]:
    ref = image["ref"]
    repo = ref.split("@")[0] if "@" in ref else ref.rsplit(":", 1)[0]
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry}/{repo}@{image['arches']['amd64']['digest']}"],
                         check=True, capture_output=True).stdout
    print(ref, json.loads(raw)["config"]["digest"])
PY
stop_registry
stop_mirror
start_docker "$WORK/docker"
images() { unshare -n "$WORK/out/install" images --runtime docker --address "$DOCKER_ADDRESS" "$@"; }
check_ids() {
  while read -r ref id; do
    case "$ref" in
    *@*) [ "$(docker_id "$id")" = "$id" ] || fail "docker has no image $id for $ref" ;;
    *) [ "$(docker_id "$ref")" = "$id" ] || fail "docker has $ref as '$(docker_id "$ref")', the registry's amd64 config is $id" ;;
    esac
  done <"$WORK/expected"
}

images >"$WORK/load.out" 2>"$WORK/load.err" || { cat "$WORK/load.err"; fail "install images --runtime docker failed"; }
grep -q "^imported 13 images (.* of blobs) into docker; all 13 images for amd64 are there at their locked digests$" \
  "$WORK/load.out" || { cat "$WORK/load.out"; fail "no summary"; }
check_ids
docker --host "unix://$DOCKER_ADDRESS" run --rm --network none registry.k8s.io/pause:3.10 \
  /bin/busybox sh -c 'echo "ran on $(uname -m)"' >"$WORK/run.out" 2>&1 || { cat "$WORK/run.out"; fail "no container ran"; }
grep -q "^ran on x86_64$" "$WORK/run.out" || { cat "$WORK/run.out"; fail "the container printed the wrong thing"; }
pass "13 images (one named by digest) are in docker with the registry's amd64 image IDs, and a container runs from one"

images >"$WORK/again.out" 2>&1 || { cat "$WORK/again.out"; fail "the second run failed"; }
grep -q "^nothing to import: all 13 images for amd64 are in docker at their locked digests; nothing changed$" \
  "$WORK/again.out" || { cat "$WORK/again.out"; fail "the second run did not say it had nothing to do"; }
pass "a second run loads nothing and says so"

docker --host "unix://$DOCKER_ADDRESS" image rm quay.io/calico/node:v3.30.5 >/dev/null
images --json >"$WORK/one.json" || fail "the reload failed"
python3 - "$WORK/one.json" <<'PY' || fail "the reload did not load just the removed image"
import json, sys
r = json.load(open(sys.argv[1]))
todo = [i["ref"] for i in r["images"] if i["action"] == "import"]
assert r["outcome"] == "imported" and r["runtime"] == "docker" and todo == ["quay.io/calico/node:v3.30.5"], r
PY
check_ids
pass "an image removed from docker is loaded again, alone"
