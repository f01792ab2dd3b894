"""`python -m sandbox` / `yfdocs sandbox`: run the simulator in the foreground.

The simulator itself only ever listens on loopback (its config refuses anything else).
Inside a container, where other containers must reach it, `--host 0.0.0.0` (or the
container's address) starts it on 127.0.0.1 and relays that address's port to it, byte for
byte: every connection-level behaviour, a dropped connection included, passes through.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import selectors
import signal
import socket
import socketserver
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

_RELAY_CHUNK = 64 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox", description="Run the Youforce Learning API simulator on loopback."
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; one that is not loopback (0.0.0.0 in a container) is "
        "relayed to the simulator on 127.0.0.1",
    )
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


def is_loopback(host: str) -> bool:
    """True for the hosts the simulator may listen on itself."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RelayHandler(socketserver.BaseRequestHandler):
    """One client connection, copied both ways to a new connection to the simulator."""

    server: _Relay

    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            upstream = socket.create_connection(self.server.target, timeout=10)
        except OSError:
            return
        with upstream, selectors.DefaultSelector() as selector:
            upstream.settimeout(None)
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            open_ends = 2
            while open_ends:
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    destination: socket.socket = key.data
                    try:
                        chunk = source.recv(_RELAY_CHUNK)
                    except OSError:
                        chunk = b""
                    if chunk:
                        try:
                            destination.sendall(chunk)
                            continue
                        except OSError:
                            return
                    # One side finished: tell the other, as a direct connection would.
                    selector.unregister(source)
                    open_ends -= 1
                    with contextlib.suppress(OSError):
                        destination.shutdown(socket.SHUT_WR)


class _Relay(socketserver.ThreadingTCPServer):
    """Listens on a non-loopback address and relays every connection to the simulator."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(listen, _RelayHandler)


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    limits = LimitConfig()
    if args.no_limits:
        limits = LimitConfig(
            max_parallel=None, spike_per_minute=None, daily_quota=None, monthly_token_budget=None
        )
    relayed = not is_loopback(args.host)
    return SandboxConfig(
        host="127.0.0.1" if relayed else args.host,
        port=0 if relayed else args.port,
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
    relay: _Relay | None = None
    try:
        server.start()
        url = server.url
        if not is_loopback(args.host):
            relay = _Relay((args.host, args.port), ("127.0.0.1", server.port))
            threading.Thread(target=relay.serve_forever, name="sandbox-relay", daemon=True).start()
            url = f"http://{args.host}:{relay.server_address[1]}"
    except OSError as exc:
        server.stop()
        parser.exit(1, f"sandbox: cannot listen on {args.host}:{args.port}: {exc}\n")
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(  # noqa: T201 - the CLI's one startup line
        f"Youforce sandbox on {url} (token URL {url}/connect/token; client "
        f"{DEFAULT_CLIENT_ID}/{DEFAULT_CLIENT_SECRET}, tenant {DEFAULT_TENANT_ID}, "
        f"time scale {config.time_scale:g})",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        if relay is not None:
            relay.shutdown()
            relay.server_close()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
