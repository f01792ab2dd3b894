#!/usr/bin/env bash
# Start the real services the integration tests use, all on loopback, and print the
# environment that points the tests at them (eval "$(scripts/test-services.sh)").
# Installs Debian's packages when they are missing; idempotent, safe to run twice.
set -euo pipefail

log() { echo "test-services: $*" >&2; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# PostgreSQL (Debian's cluster, runs as the postgres user, listens on localhost).
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  pg_createcluster "$pg_version" main >&2
fi
cluster=$(pg_lsclusters -h | head -n 1 | awk '{print $1" "$2}')
pg_port=$(pg_lsclusters -h | head -n 1 | awk '{print $3}')
if ! pg_lsclusters -h | head -n 1 | grep -q online; then
  log "starting PostgreSQL $cluster"
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start >&2
fi
for _ in $(seq 1 60); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
  sleep 0.5
done
runuser -u postgres -- psql -q -p "$pg_port" -tc "SELECT 1 FROM pg_roles WHERE rolname='yfdocs'" | grep -q 1 \
  || runuser -u postgres -- psql -q -p "$pg_port" -c "CREATE ROLE yfdocs LOGIN PASSWORD 'yfdocs' CREATEDB" >&2
runuser -u postgres -- psql -q -p "$pg_port" -tc "SELECT 1 FROM pg_database WHERE datname='yfdocs_test'" | grep -q 1 \
  || runuser -u postgres -- psql -q -p "$pg_port" -c "CREATE DATABASE yfdocs_test OWNER yfdocs" >&2

# Redis.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >&2
fi
for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done

# RabbitMQ.
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=25672
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  rabbitmq-server -detached >&2
fi
rabbitmqctl -q await_startup --timeout 120 >&2

cat <<ENV
export YFDOCS_TEST_POSTGRES_URL=postgresql+psycopg://yfdocs:yfdocs@127.0.0.1:${pg_port}/yfdocs_test
export YFDOCS_TEST_REDIS_URL=redis://127.0.0.1:6379/0
export YFDOCS_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672//
export YFDOCS_TEST_CHROMIUM=$(command -v chromium)
ENV
