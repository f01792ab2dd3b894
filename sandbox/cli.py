"""`python -m sandbox` / `yfdocs sandbox`: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from sandbox.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
    LOOPBACK_HOSTS,
    FaultConfig,
    LimitConfig,
    SandboxConfig,
)
from sandbox.server import SandboxServer

__all__ = ["build_parser", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox", description="Run the Youforce Learning API simulator on loopback."
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--host", choices=LOOPBACK_HOSTS, default="127.0.0.1")
    parser.add_argument("--time-scale", type=float, default=1.0, help="API time speed-up")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-limits", action="store_true", help="switch off every usage limit")
    parser.add_argument(
        "--status-format", choices=("names", "numbers"), default="names", help="ticket status form"
    )
    parser.add_argument(
        "--legacy-token", action="store_true", help='answer expires_in as a string, "BearerToken"'
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of calls failing 5xx")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="share of tickets failing")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    limits = LimitConfig()
    if args.no_limits:
        limits = LimitConfig(
            max_parallel=None, spike_per_minute=None, daily_quota=None, monthly_token_budget=None
        )
    return SandboxConfig(
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        seed=args.seed,
        limits=limits,
        faults=FaultConfig(server_error_rate=args.error_rate),
        ticket_failure_rate=args.failure_rate,
        status_format=args.status_format,
        legacy_token_answer=args.legacy_token,
    )


def serve(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    server = SandboxServer(config)
    try:
        server.start()
    except OSError as exc:
        parser.exit(1, f"sandbox: cannot listen on {args.host}:{args.port}: {exc}\n")
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(  # noqa: T201 - the CLI's one startup line
        f"Youforce sandbox on {server.url} (token URL {server.token_url}; client "
        f"{DEFAULT_CLIENT_ID}/{DEFAULT_CLIENT_SECRET}, tenant {DEFAULT_TENANT_ID}, "
        f"time scale {config.time_scale:g})",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
