#!/bin/sh
# Initialise the data directory on first start (as the official image does), then run
# PostgreSQL in the foreground. Runs as the postgres user.
set -eu

log() { echo "postgres-entrypoint: $*" >&2; }

if [ "${1:-postgres}" != postgres ]; then
    exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        log "POSTGRES_PASSWORD is not set: refusing to create a database without a password"
        exit 1
    fi
    log "initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
        ${POSTGRES_INITDB_ARGS:-} >&2
    rm -f "$pwfile"
    trap - EXIT
    # Every address of the container; clients authenticate with their password.
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # Single-user mode: nothing listens before the database exists.
        echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" |
            postgres --single -j -D "$PGDATA" postgres >/dev/null
    fi
    log "initialised"
fi

if [ $# -gt 0 ]; then shift; fi
exec postgres -D "$PGDATA" "$@"
