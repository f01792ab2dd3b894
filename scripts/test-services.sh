#!/usr/bin/env bash
# Start the real services the integration tests use, all on loopback, and print the
# environment that points the tests at them (eval "$(scripts/test-services.sh)").
# Installs Debian's packages when they are missing; idempotent, safe to run twice.
# On failure it names the step that failed and shows the service's own log, then exits 1:
# the caller must check the exit status (an empty eval would hide it).
# The S3 server the tests use (moto's) is not started here but by the test session itself
# (tests/plugins/s3_fixtures.py): moto lives in .venv, which `dev.py test` builds only after
# this script has run on a fresh machine; a server that does not start fails the run in CI.
set -euo pipefail

# Debian keeps the service commands (runuser, rabbitmq-server, rabbitmqctl) in sbin, which a
# minimal PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { echo "test-services: $*" >&2; }

show_logs() {
  local file
  for file in /var/log/postgresql/*.log /var/log/rabbitmq/startup_err /var/log/rabbitmq/*.log \
    /tmp/yfdocs-test-redis.log; do
    [ -s "$file" ] || continue
    log "---- last lines of $file"
    tail -n 25 "$file" >&2 || true
  done
}
trap 'status=$?; log "FAILED (exit $status) at line $LINENO: $BASH_COMMAND"; show_logs; exit 1' ERR

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null || missing+=(prometheus) # promtool checks the alert rules
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Only promtool is wanted from Debian's prometheus package: the server it brings (and a
  # systemd host starts, on every interface) is stopped again.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null \
    && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >&2 || true
  fi
fi

# PostgreSQL (Debian's cluster, runs as the postgres user, listens on localhost).
pg_version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
clusters=$(pg_lsclusters -h 2>/dev/null || true)
if [ -z "$clusters" ]; then
  log "creating PostgreSQL cluster $pg_version/main"
  pg_createcluster "$pg_version" main >&2
  clusters=$(pg_lsclusters -h)
fi
first_cluster=$(printf '%s\n' "$clusters" | sed -n 1p)
cluster=$(printf '%s\n' "$first_cluster" | awk '{print $1" "$2}')
pg_port=$(printf '%s\n' "$first_cluster" | awk '{print $3}')
if ! printf '%s\n' "$first_cluster" | grep -q online; then
  log "starting PostgreSQL $cluster on port $pg_port"
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start >&2
fi
pg_ready=no
for _ in $(seq 1 120); do
  if runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$pg_port"; then pg_ready=yes; break; fi
  sleep 0.5
done
[ "$pg_ready" = yes ] || { log "PostgreSQL did not accept connections on port $pg_port"; false; }
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -p "$pg_port" "$@"; }
# The test role's password is a secret like any other to the log masking, which replaces
# it wherever it appears: it must not be a word the logs use ("yfdocs" would mask the
# service's own name in every line).
pg_password=ci-only-pg-password
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname='yfdocs'")" ]; then
  psql_admin -c "CREATE ROLE yfdocs LOGIN PASSWORD '$pg_password' CREATEDB" >&2
else
  psql_admin -c "ALTER ROLE yfdocs PASSWORD '$pg_password'" >&2
fi
# Tests drop their databases WITH (FORCE); ending an autovacuum worker in one needs this.
psql_admin -c "GRANT pg_signal_backend TO yfdocs" >&2
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname='yfdocs_test'")" ]; then
  psql_admin -c "CREATE DATABASE yfdocs_test OWNER yfdocs" >&2
fi

# Redis.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --logfile /tmp/yfdocs-test-redis.log >&2
fi
redis_ready=no
for _ in $(seq 1 120); do
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then redis_ready=yes; break; fi
  sleep 0.25
done
[ "$redis_ready" = yes ] || { log "Redis did not answer on 127.0.0.1:6379"; false; }

# RabbitMQ. The node is named after localhost, not the machine's host name, which a fresh
# machine may not resolve (Erlang distribution needs it to).
export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=25672
export ERL_EPMD_ADDRESS=127.0.0.1
# The management API (Flower's broker page reads the queues from it) on loopback too.
management_listener="[{ip,{127,0,0,1}},{port,15672}]"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -rabbitmq_management tcp_config $management_listener"
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  rabbitmq-server -detached >&2
fi
# A node that has not yet registered with epmd counts as "not running at all", and
# await_startup gives up on it at once: ask again until the node is up or 120 s pass.
rabbit_ready=no
rabbit_deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$rabbit_deadline" ]; do
  if rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; then rabbit_ready=yes; break; fi
  sleep 1
done
if [ "$rabbit_ready" != yes ]; then
  rabbitmqctl -q status >&2 || true
  log "RabbitMQ did not start within 120 s"
  false
fi

# The management plugin, for Flower's broker page: enabled on a running node too (its
# listener is set first, so it never listens beyond loopback).
if ! rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1; then
  log "enabling RabbitMQ's management plugin"
  rabbitmqctl -q eval "application:set_env(rabbitmq_management, tcp_config, $management_listener)." >&2
  rabbitmq-plugins -q enable rabbitmq_management >&2
fi
management_ready=no
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview 2>/dev/null; then
    management_ready=yes
    break
  fi
  sleep 1
done
[ "$management_ready" = yes ] || { log "RabbitMQ's management API did not answer on 127.0.0.1:15672"; false; }

cat <<ENV
export YFDOCS_TEST_POSTGRES_URL=postgresql+psycopg://yfdocs:${pg_password}@127.0.0.1:${pg_port}/yfdocs_test
export YFDOCS_TEST_REDIS_URL=redis://127.0.0.1:6379/0
export YFDOCS_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672//
export YFDOCS_TEST_RABBITMQ_API_URL=http://guest:guest@127.0.0.1:15672/api/
export YFDOCS_TEST_CHROMIUM=$(command -v chromium)
ENV
