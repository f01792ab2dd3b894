#!/bin/sh
# Write the account from RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS into the
# configuration (RabbitMQ creates it when a node starts on an empty data directory, as the
# official image does), then run the server in the foreground. Runs as the rabbitmq user.
set -eu

defaults=/etc/rabbitmq/conf.d/10-defaults.conf
{
    echo "# written by docker-entrypoint.sh at container start"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
        echo "default_user = $RABBITMQ_DEFAULT_USER"
    fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then
        echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    fi
} > "$defaults"
chmod 0600 "$defaults"

if [ "${1:-}" = rabbitmq-server ]; then
    shift
    exec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
