#!/usr/bin/env bash
# Install (Debian's packages) and start a Docker engine, then print the environment the
# deployment test reads (eval "$(scripts/docker/start-engine.sh)"). Idempotent.
#   docker.io        the engine (dockerd) and its CLI
#   docker-compose   Compose v1 (1.29), Debian 12's only Compose
#   debootstrap      for scripts/docker/build-images.sh's base image
#   Compose v2       Debian 12 has none; Debian 13's docker-compose package (2.x, a Go
#                    binary needing only glibc >= 2.34) is fetched from the same mirror
#                    into a private folder, used through `docker --config DIR compose`,
#                    and never installed over v1.
# No systemd here: dockerd runs in the background, its log in /var/log/yfdocs-dockerd.log.
# On failure it names the step, shows the log and exits 1.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

DOCKERD_LOG=/var/log/yfdocs-dockerd.log
V2_DIR=/var/lib/yfdocs-ci/compose-v2
V2_SUITE=trixie

log() { echo "start-engine: $*" >&2; }
step_name=setup
# shellcheck disable=SC2154 # status is set inside the trap
trap 'status=$?; log "FAILED (exit $status) in step \"$step_name\" at line $LINENO: $BASH_COMMAND"; [ -s "$DOCKERD_LOG" ] && tail -n 30 "$DOCKERD_LOG" >&2; exit 1' ERR

started=$SECONDS
step_name="install packages"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  timeout 300 apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >&2
fi

step_name="start dockerd"
if ! timeout 20 docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $DOCKERD_LOG)"
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  ready=no
  for _ in $(seq 1 120); do
    if timeout 10 docker info >/dev/null 2>&1; then ready=yes; break; fi
    sleep 0.5
  done
  [ "$ready" = yes ] || { log "dockerd did not answer within 60 s"; false; }
fi
log "engine $(docker version --format '{{.Server.Version}}') answers"

step_name="compose v2 from Debian $V2_SUITE"
if [ ! -x "$V2_DIR/cli-plugins/docker-compose" ]; then
  apt_dir=$(mktemp -d /tmp/yfdocs-apt-$V2_SUITE.XXXXXX)
  chmod 0755 "$apt_dir" # apt downloads as the _apt user
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$V2_DIR/cli-plugins"
  mirror=$(grep -ohE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
    head -n 1 | tr -d ' ' || true)
  echo "deb ${mirror:-http://deb.debian.org/debian} $V2_SUITE main" >"$apt_dir/sources.list"
  apt_options=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
  timeout 300 apt-get "${apt_options[@]}" update -qq >&2
  (cd "$apt_dir" && timeout 300 apt-get "${apt_options[@]}" download -qq docker-compose >&2 2>/dev/null)
  dpkg-deb -x "$apt_dir"/docker-compose_*.deb "$apt_dir/unpacked"
  install -m 0755 "$apt_dir/unpacked/usr/libexec/docker/cli-plugins/docker-compose" "$V2_DIR/cli-plugins/"
  rm -rf "$apt_dir"
fi
log "$(docker-compose version --short 2>/dev/null | sed 's/^/compose v1 /') and $(docker --config "$V2_DIR" compose version --short | sed 's/^/compose v2 /') ready in $((SECONDS - started))s"

cat <<ENV
export YFDOCS_TEST_DOCKER=1
export YFDOCS_TEST_COMPOSE_V2_CONFIG=$V2_DIR
ENV
