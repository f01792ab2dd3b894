"""Commands that run a long-lived process: worker, beat, flower, sandbox, demo."""

from __future__ import annotations

import os
import sys

import click

from config import Settings

__all__ = ["COMMANDS"]


FLOWER_TASK_COLUMNS = "name,uuid,state,result,exception,received,runtime,worker"


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


def _quiet_if_json(settings: Settings) -> list[str]:
    """Celery's `--quiet` (no banner on stdout) when every line must be a JSON log line."""
    return ["--quiet"] if settings.log_format == "json" else []


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
    from worker.heartbeats import record_worker_heartbeats
    from worker.logging_hooks import use_yfdocs_logging
    from worker.tasks import create_worker_app

    settings = _settings(ctx)
    if not settings.client_id or settings.client_secret is None:
        raise click.UsageError("set YFDOCS_CLIENT_ID and YFDOCS_CLIENT_SECRET")
    _prepare_database(settings)
    _release_credential_holds(settings)
    use_yfdocs_logging(settings)
    record_worker_heartbeats(settings)
    app = create_worker_app(settings)
    argv = [
        *_quiet_if_json(settings),
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
    from worker.logging_hooks import use_yfdocs_logging
    from worker.tasks import dispatch_with_beat

    settings = _settings(ctx)
    _prepare_database(settings)
    use_yfdocs_logging(settings)
    app = create_celery_app(settings)
    dispatch_with_beat(app)
    app.start(
        [
            *_quiet_if_json(settings),
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
    """Run Flower on this app, behind basic auth on every page, /metrics and /healthcheck too.

    The user is YFDOCS_FLOWER_USER; the password YFDOCS_FLOWER_PASSWORD, or, without one,
    a password generated once into the data dir (flower-password, readable only by its
    owner), whose place is printed. On RabbitMQ, YFDOCS_FLOWER_BROKER_API fills the broker
    page.
    """
    from worker.celery_app import create_celery_app
    from worker.flower_auth import guard_every_route
    from yfdocs.flower_access import FlowerAccessError, flower_credentials

    settings = _settings(ctx)
    try:
        credentials = flower_credentials(settings)
    except FlowerAccessError as exc:
        raise click.UsageError(str(exc)) from None
    if credentials.generated_in is not None:
        click.echo(
            f"yfdocs flower: no YFDOCS_FLOWER_PASSWORD set; the password of user "
            f"{credentials.user} is in {credentials.generated_in} (readable only by its owner)",
            err=True,
        )
    # Given through the environment, not argv: the process list must not show them.
    os.environ["FLOWER_BASIC_AUTH"] = credentials.basic_auth_option
    if settings.flower_broker_api is not None:
        os.environ["FLOWER_BROKER_API"] = settings.flower_broker_api.get_secret_value()
    # The task list shows what each task delivered and why one failed (FLOWER_TASKS_COLUMNS
    # in the environment chooses other columns).
    os.environ.setdefault("FLOWER_TASKS_COLUMNS", FLOWER_TASK_COLUMNS)
    guard_every_route()
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
