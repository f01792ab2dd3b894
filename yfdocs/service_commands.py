"""Commands that run a long-lived process: worker, beat, flower, sandbox, demo."""

from __future__ import annotations

import os
import sys

import click

from config import Settings

__all__ = ["COMMANDS"]


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj.settings
    return settings


def _prepare_database(settings: Settings) -> None:
    """Make the data dir and bring the schema to head (PostgreSQL serialises this with a lock)."""
    from models import make_engine, migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


def _release_credential_holds(settings: Settings) -> None:
    """Jobs held back by a refusal of other credentials than these need not wait it out."""
    from models import make_engine, utcnow
    from scheduling.credentials import release_credential_holds

    engine = make_engine(settings.resolved_database_url)
    try:
        released = release_credential_holds(engine, settings, utcnow())
    finally:
        engine.dispose()
    if released:
        click.echo(f"yfdocs: new credentials: {released} held jobs go now", err=True)


@click.command("migrate")
@click.pass_context
def migrate_command(ctx: click.Context) -> None:
    """Bring the database schema to this version's head; safe to run again and at once from
    several hosts (PostgreSQL serialises it with an advisory lock). Prints the revision."""
    from models import make_engine, migrate

    settings = _settings(ctx)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        revision = migrate(engine)
    finally:
        engine.dispose()
    click.echo(f"schema at revision {revision}")


@click.command("worker")
@click.option("--no-beat", is_flag=True, help="Do not embed the sweeper's beat (for fleets).")
@click.option("--concurrency", type=int, default=None, help="Worker processes [max concurrency].")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--hostname", default=None, help="Celery node name (default yfdocs-PID@host).")
@click.pass_context
def worker_command(
    ctx: click.Context, no_beat: bool, concurrency: int | None, loglevel: str, hostname: str | None
) -> None:
    """Run a Celery worker that uploads documents and follows their tickets."""
    from worker.tasks import create_worker_app

    settings = _settings(ctx)
    if not settings.client_id or settings.client_secret is None:
        raise click.UsageError("set YFDOCS_CLIENT_ID and YFDOCS_CLIENT_SECRET")
    _prepare_database(settings)
    _release_credential_holds(settings)
    app = create_worker_app(settings)
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--concurrency={concurrency or settings.max_concurrency}",
        f"--hostname={hostname or f'yfdocs-{os.getpid()}@%h'}",
        "--task-events",
        "--without-mingle",
        "--without-gossip",
    ]
    if not no_beat:
        argv += ["--beat", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"]
    app.worker_main(argv)


@click.command("dispatcher")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron or a check).")
@click.pass_context
def dispatcher_command(ctx: click.Context, once: bool) -> None:
    """Run the dispatcher: publish the work that can start now, every
    YFDOCS_DISPATCH_INTERVAL seconds. One acts at a time per deployment (a lease in the
    database); `yfdocs worker` with its beat runs one too, for a single machine."""
    import signal

    from models import make_engine, utcnow
    from worker.celery_app import CeleryPublisher, create_celery_app
    from worker.dispatcher import DispatcherLoop
    from worker.runtime import process_owner

    settings = _settings(ctx)
    _prepare_database(settings)
    engine = make_engine(settings.resolved_database_url)
    publisher = CeleryPublisher(create_celery_app(settings))
    owner = process_owner()
    loop = DispatcherLoop(engine, settings, publisher, owner=owner, clock=utcnow)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.stop())
    click.echo(f"yfdocs dispatcher {owner}: every {settings.dispatch_interval:g} s", err=True)
    try:
        loop.run(once=once)
    finally:
        engine.dispose()


@click.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
@click.pass_context
def beat_command(ctx: click.Context, loglevel: str) -> None:
    """Run beat alone (the sweeper, and the dispatcher as a thread): exactly one per
    deployment."""
    from worker.celery_app import create_celery_app
    from worker.tasks import dispatch_with_beat

    settings = _settings(ctx)
    _prepare_database(settings)
    app = create_celery_app(settings)
    dispatch_with_beat(app)
    app.start(
        [
            "beat",
            f"--loglevel={loglevel}",
            f"--schedule={settings.data_dir / 'celerybeat-schedule'}",
        ]
    )


@click.command("flower")
@click.option("--port", type=int, default=None, help="Port [YFDOCS_FLOWER_PORT or 5555].")
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def flower_command(ctx: click.Context, port: int | None, address: str) -> None:
    """Run Flower on this app, behind basic auth (YFDOCS_FLOWER_USER / _PASSWORD).

    Flower's /metrics and /healthcheck answer without authentication: keep it on a
    private address, as the default does.
    """
    from worker.celery_app import create_celery_app

    settings = _settings(ctx)
    if settings.flower_password is None:
        raise click.UsageError("set YFDOCS_FLOWER_PASSWORD: Flower never runs without auth")
    # Given through the environment, not argv: the process list must not show it.
    os.environ["FLOWER_BASIC_AUTH"] = (
        f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    )
    app = create_celery_app(settings)
    app.start(["flower", f"--port={port or settings.flower_port}", f"--address={address}"])


@click.command("sandbox")
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--time-scale", type=float, default=1.0, show_default=True)
def sandbox_command(port: int, time_scale: float) -> None:
    """Run the Youforce API simulator on loopback (client sandbox-client / sandbox-secret)."""
    from sandbox import serve

    sys.exit(serve(["--port", str(port), "--time-scale", str(time_scale)]))


@click.command("demo")
@click.option("--keep", is_flag=True, help="Leave everything running, with Flower, until Ctrl-C.")
@click.option("--timeout", type=float, default=180.0, show_default=True)
@click.pass_context
def demo_command(ctx: click.Context, keep: bool, timeout: float) -> None:
    """The main job on embedded defaults: sandbox, worker with beat, sample documents."""
    from yfdocs.demo import run_demo

    sys.exit(run_demo(_settings(ctx), keep=keep, timeout=timeout))


COMMANDS: list[click.Command] = [
    migrate_command,
    worker_command,
    dispatcher_command,
    beat_command,
    flower_command,
    sandbox_command,
    demo_command,
]
