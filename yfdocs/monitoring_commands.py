"""`yfdocs metrics`: the fleet's Prometheus metrics, computed from the database."""

from __future__ import annotations

import click

from config import Settings

__all__ = ["COMMANDS"]


@click.command("metrics")
@click.option("--port", type=int, default=None, help="Port [YFDOCS_METRICS_PORT or 9808].")
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def metrics_command(ctx: click.Context, port: int | None, address: str) -> None:
    """Serve the fleet's metrics at /metrics, read from the database on every scrape.

    One exporter serves a whole fleet: every number comes from the shared database. With
    YFDOCS_METRICS_TOKEN set, every scrape must send it as a bearer token; without it,
    only loopback is served.
    """
    from models import make_engine, migrate
    from models.db import SchemaNotReady, require_schema
    from monitoring.exposition import metrics_registry
    from monitoring.server import MetricsServer, is_loopback

    settings: Settings = ctx.obj.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not token and not is_loopback(address):
        raise click.UsageError(
            f"set YFDOCS_METRICS_TOKEN to serve metrics on {address}: without a token only "
            "loopback is served"
        )
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        if url.startswith("sqlite"):
            migrate(engine)  # the embedded database, as the other commands do
        else:
            require_schema(engine)  # a fleet's schema moves with `yfdocs migrate` only
    except SchemaNotReady as exc:
        engine.dispose()
        raise click.ClickException(str(exc)) from None
    server = MetricsServer(
        address, port or settings.metrics_port, metrics_registry(engine, settings), token
    )
    guarded = "a bearer token is required" if token else "no token: loopback only"
    click.echo(f"yfdocs metrics: serving {server.url} ({guarded})", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.dispose()


COMMANDS: list[click.Command] = [metrics_command]
