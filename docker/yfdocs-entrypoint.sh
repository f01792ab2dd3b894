#!/bin/sh
# Entry point of every yfdocs container: check the configuration, then run the command.
#
# YFDOCS_DEPLOYMENT says which Youforce API this deployment talks to:
#   production (default)  the real API. A variable that still holds the env file template's
#                         placeholder (change-me) is refused here, before anything starts.
#   sandbox               the simulator of docker-compose.yml's `sandbox` profile, with its
#                         public test credentials (yfdocs.env.example has them). The
#                         placeholder check is skipped, so YFDOCS_API_URL and
#                         YFDOCS_TOKEN_URL must point at the simulator (http://sandbox:...):
#                         a relaxed check never covers a deployment that reaches the real API.
# The values live in the environment, not here, so that `docker compose exec` (which runs
# no entry point) sees the same configuration. Only variable names are printed.
set -eu

log() { echo "yfdocs-entrypoint: $*" >&2; }

PLACEHOLDER=change-me
CHECKED="YFDOCS_CLIENT_ID YFDOCS_CLIENT_SECRET YFDOCS_TENANT_ID YFDOCS_FLOWER_PASSWORD
YFDOCS_DATABASE_URL YFDOCS_BROKER_URL POSTGRES_PASSWORD RABBITMQ_PASSWORD AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY"

case "${YFDOCS_DEPLOYMENT:-production}" in
production)
    refused=""
    for name in $CHECKED; do
        eval "value=\${$name:-}"
        # shellcheck disable=SC2154 # set by the eval above
        case "$value" in
        *"$PLACEHOLDER"*) refused="$refused $name" ;;
        esac
    done
    if [ -n "$refused" ]; then
        log "refusing to start: these variables still hold the placeholder '$PLACEHOLDER':$refused"
        log "set real values in the env file, or YFDOCS_DEPLOYMENT=sandbox for the simulator"
        exit 78 # EX_CONFIG
    fi
    ;;
sandbox)
    for name in YFDOCS_API_URL YFDOCS_TOKEN_URL; do
        eval "value=\${$name:-}"
        case "$value" in
        http://sandbox:* | http://sandbox/*) ;;
        *)
            log "refusing to start: YFDOCS_DEPLOYMENT=sandbox, but $name does not point at the sandbox service (http://sandbox:8765)"
            exit 78
            ;;
        esac
    done
    ;;
*)
    log "YFDOCS_DEPLOYMENT must be 'production' or 'sandbox'"
    exit 78
    ;;
esac

exec "$@"
