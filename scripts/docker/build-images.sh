#!/usr/bin/env bash
# Build, without any image registry, the images docker-compose.yml runs:
#   yfdocs-base:bookworm           Debian 12 (debootstrap --variant=minbase), imported
#   yfdocs-postgres:15             PostgreSQL 15 from Debian, the official postgres:15 contract
#   yfdocs-rabbitmq:3-management   RabbitMQ from Debian with the management plugin
#   yfdocs:latest                  this project's Dockerfile on yfdocs-base:bookworm
# Idempotent: an image whose inputs (its files, its base image) have not changed since it
# was built is kept (YFDOCS_REBUILD=1 builds everything again). Each step is bounded with
# `timeout` and prints how long it took; a failing step names itself and exits 1.
# Needs root (debootstrap) and a running Docker engine.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE=bookworm
BASE_IMAGE=yfdocs-base:$SUITE
POSTGRES_IMAGE=yfdocs-postgres:15
RABBITMQ_IMAGE=yfdocs-rabbitmq:3-management
YFDOCS_IMAGE=yfdocs:latest
LABEL=org.yfdocs.inputs
EXTRA_CA_DIR=/usr/local/share/ca-certificates
# Which version of the steps below built an image; bump it to rebuild everywhere.
RECIPE=2

log() { echo "build-images: $*" >&2; }
step_name="setup"
# shellcheck disable=SC2154 # status is set inside the trap
trap 'status=$?; log "FAILED (exit $status) in step \"$step_name\" at line $LINENO: $BASH_COMMAND"; exit 1' ERR

# The Debian mirror the host uses (deb822 "URIs:" or one-line "deb URL SUITE" entries).
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n 1 | tr -d ' ' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# The security archive beside it: the host's if it names one, else the mirror's sibling.
security_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian-security/?( |$)' | head -n 1 | tr -d ' ' || true)
  echo "${uri:-${1%/debian}/debian-security}"
}

current_label() { docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

is_current() {
  [ "${YFDOCS_REBUILD:-0}" != 1 ] && [ "$(current_label "$1")" = "$2" ]
}

# A digest of files' names and contents (sorted), for the idempotency label.
digest_files() {
  find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z |
    xargs -0 sha256sum | sha256sum | cut -c1-16
}

image_id() { docker image inspect --format '{{.Id}}' "$1"; }

timed() {
  # timed NAME SECONDS COMMAND...: run one step within a time limit and report its duration.
  step_name=$1
  local limit=$2 started=$SECONDS
  shift 2
  log "[$step_name] started (limit ${limit}s)"
  if ! timeout --kill-after=10 "$limit" "$@" >&2; then
    log "[$step_name] failed or ran over ${limit}s"
    false
  fi
  log "[$step_name] done in $((SECONDS - started))s"
}

build_base() {
  local mirror root
  mirror=$(debian_mirror)
  root=$(mktemp -d /tmp/yfdocs-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$root'" RETURN
  log "debootstrap --variant=minbase $SUITE from $mirror"
  debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >/tmp/yfdocs-debootstrap.log 2>&1 || {
    tail -n 20 /tmp/yfdocs-debootstrap.log >&2
    return 1
  }
  # The point release's updates and security fixes, for this image and every package the
  # other images install on it.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$SUITE" "$mirror" "$SUITE" "$(security_mirror "$mirror")" "$SUITE" \
    >"$root/etc/apt/sources.list"
  chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq' \
    >>/tmp/yfdocs-debootstrap.log 2>&1 || {
    tail -n 20 /tmp/yfdocs-debootstrap.log >&2
    return 1
  }
  # Smaller and quieter: no package lists or caches in the image.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import --change "LABEL $LABEL=\"$1\"" - "$BASE_IMAGE" >/dev/null
}

# The base image's one step, run by `timed` through this script so `timeout` can bound it.
if [ "${1:-}" = --base-step ]; then
  build_base "$2"
  exit 0
fi

overall=$SECONDS
command -v docker >/dev/null || { log "docker is not installed (scripts/docker/start-engine.sh)"; exit 1; }
docker info >/dev/null 2>&1 || { log "the Docker engine does not answer (scripts/docker/start-engine.sh)"; exit 1; }

base_inputs="recipe=$RECIPE suite=$SUITE variant=minbase"
if is_current "$BASE_IMAGE" "$base_inputs"; then
  log "[$BASE_IMAGE] current, kept"
else
  command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
  timed "$BASE_IMAGE" 600 "$0" --base-step "$base_inputs"
fi
base_id=$(image_id "$BASE_IMAGE")

build_image() {
  # build_image TAG CONTEXT DOCKERFILE INPUTS LIMIT [EXTRA DOCKER BUILD ARGS...]
  local tag=$1 context=$2 dockerfile=$3 inputs=$4 limit=$5
  shift 5
  if is_current "$tag" "$inputs"; then
    log "[$tag] current, kept"
    return 0
  fi
  timed "$tag" "$limit" docker build --quiet --label "$LABEL=$inputs" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$dockerfile" -t "$tag" "$@" "$context"
}

build_image "$POSTGRES_IMAGE" docker/postgres docker/postgres/Dockerfile \
  "recipe=$RECIPE base=$base_id files=$(digest_files docker/postgres)" 600
build_image "$RABBITMQ_IMAGE" docker/rabbitmq docker/rabbitmq/Dockerfile \
  "recipe=$RECIPE base=$base_id files=$(digest_files docker/rabbitmq)" 600

# The host's extra CA certificates, for the build stage's downloads only (git-ignored).
step_name="build certificates"
find docker/build-ca -name '*.crt' -delete
if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
  cp "$EXTRA_CA_DIR"/*.crt docker/build-ca/
  log "copied $(find docker/build-ca -name '*.crt' | wc -l) extra CA certificate(s) into docker/build-ca/"
fi
project_files=(Dockerfile .dockerignore requirements.lock pyproject.toml README.md api_client models
  worker sandbox intake docker/yfdocs-entrypoint.sh docker/build-ca)
build_image "$YFDOCS_IMAGE" . Dockerfile \
  "recipe=$RECIPE base=$base_id files=$(digest_files "${project_files[@]}")" 900

log "all images ready in $((SECONDS - overall))s: $BASE_IMAGE $POSTGRES_IMAGE $RABBITMQ_IMAGE $YFDOCS_IMAGE"
