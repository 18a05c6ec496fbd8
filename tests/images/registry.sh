# shellcheck shell=bash
# Helpers for the container-image tests; sourced, never run. Works under set -euo pipefail.
#
#   ensure_images        sets IMAGES_ROOT to the image fixture (tools/make-images.py), building
#                        it once per version of that script
#   start_registry DIR   serves a distribution registry (docker-registry) on 127.0.0.1 with its
#                        storage under DIR; sets REGISTRY (host:port) and REGISTRY_PID
#   stop_registry        stops it; safe to call twice or when none runs
#   push_images          pushes every image of the fixture to $REGISTRY/<original reference>
#
# start_registry adds stop_registry to the EXIT trap that is set when it runs (tests/lib.sh's
# one, say). A caller that sets its EXIT trap afterwards must call stop_registry from it.

: "${KUBEXM_SOURCE:?KUBEXM_SOURCE must point at the source tree}"
IMAGES_CACHE=${KUBEXM_TEST_CACHE:-/var/cache/kubexm-test}

_registry_fail() {
  if declare -F fail >/dev/null; then
    fail "$@"
  fi
  echo "FAIL: $*" >&2
  exit 1
}

# ensure_images: sets IMAGES_ROOT; builds the fixture under a lock when it is missing.
ensure_images() {
  mkdir -p "$IMAGES_CACHE"
  local key
  key=$(sha256sum <"$KUBEXM_SOURCE/tools/make-images.py" | cut -c1-16)
  IMAGES_ROOT="$IMAGES_CACHE/images-$key"
  (
    flock 9
    if [ ! -f "$IMAGES_ROOT/README.txt" ]; then
      python3 "$KUBEXM_SOURCE/tools/make-images.py" --out "$IMAGES_ROOT" --debs "$IMAGES_CACHE/debs" >&2
    fi
  ) 9>"$IMAGES_CACHE/images.lock"
}

# image_refs: the fixture's references, one a line.
image_refs() {
  cut -d' ' -f1 "$IMAGES_ROOT/images.txt"
}

# image_index_digest REF: the digest of REF's image index in the fixture.
image_index_digest() {
  awk -v ref="$1" '$1 == ref { print $2 }' "$IMAGES_ROOT/images.txt"
}

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry DIR [HTPASSWD]: DIR holds the config, the storage and registry.log; with
# HTPASSWD (a bcrypt htpasswd file) the registry asks for credentials.
start_registry() {
  local dir=$1 htpasswd=${2:-}
  stop_registry
  mkdir -p "$dir/storage"
  local port
  port=$(_free_port)
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  if [ -n "$htpasswd" ]; then
    printf 'auth:\n  htpasswd:\n    realm: kubexm-test\n    path: %s\n' "$htpasswd" >>"$dir/config.yml"
  fi
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  # shellcheck disable=SC2119
  _registry_chain_trap
  local _
  for _ in $(seq 200); do
    case "$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/")" in
    200 | 401) return 0 ;;
    esac
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      break
    fi
    sleep 0.05
  done
  cat "$dir/registry.log" >&2
  stop_registry
  _registry_fail "the registry did not answer on $REGISTRY"
}

stop_registry() {
  if [ -n "${REGISTRY_PID:-}" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=
  fi
}

# Prepends stop_registry to the current EXIT trap, once.
# shellcheck disable=SC2120
_registry_chain_trap() {
  [ -z "${_REGISTRY_TRAPPED:-}" ] || return 0
  _REGISTRY_TRAPPED=1
  local current
  current=$(trap -p EXIT)
  if [ -z "$current" ]; then
    trap 'stop_registry' EXIT
    return 0
  fi
  # trap -p prints: trap -- 'COMMAND' EXIT, with COMMAND quoted for eval.
  eval "set -- $current"
  if [[ $3 != *stop_registry* ]]; then
    # The old command is expanded now on purpose: it is kept verbatim in the new trap.
    # shellcheck disable=SC2064
    trap "stop_registry; $3" EXIT
  fi
}

# push_images: copies every image of the fixture, with all its arches and unchanged digests,
# to $REGISTRY/<reference>, and checks the registry serves each index with the same digest.
push_images() {
  : "${REGISTRY:?start_registry first}" "${IMAGES_ROOT:?ensure_images first}"
  local ref want got
  while read -r ref; do
    skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
      "oci:$IMAGES_ROOT/layout:$ref" "docker://$REGISTRY/$ref" </dev/null >/dev/null ||
      _registry_fail "could not push $ref to $REGISTRY"
    want=$(image_index_digest "$ref")
    got=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/$ref" </dev/null | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || _registry_fail "$REGISTRY/$ref has index $got, the fixture $want"
  done < <(image_refs)
}
