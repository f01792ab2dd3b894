"""Runtime configuration of the sandbox.

Defaults are the real API's published limits, so a client that passes against the
defaults respects the real contract. Everything a test may want to bend is a plain field
that `POST /_sandbox/config` can patch while the server runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_SCOPES",
    "DEFAULT_TENANT_ID",
    "SECOND_TENANT_ID",
    "ClientApp",
    "ConfigPatchError",
    "DelayDistribution",
    "FaultConfig",
    "LimitConfig",
    "SandboxConfig",
    "apply_patch",
    "config_to_dict",
]

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the documented demo secret
DEFAULT_TENANT_ID = "4028868"
SECOND_TENANT_ID = "4028869"
DEFAULT_SCOPES: tuple[str, ...] = ("Invitation_only", "Get_Basic", "Upload_documents")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
DELAY_KINDS = ("fixed", "uniform", "lognormal")
STATUS_FORMATS = ("names", "numbers")
ERROR_SHAPES = ("mixed", "nested", "flat")
RECORDS_KEYS = ("value", "values")
DROP_PHASES = ("before_body", "after_body")


class ConfigPatchError(ValueError):
    """A config patch names an unknown field or gives a value of the wrong type."""


@dataclass
class ClientApp:
    """One registered app: its credentials, the tenants it was invited to, its scopes."""

    client_id: str
    client_secret: str
    tenants: tuple[str, ...] = (DEFAULT_TENANT_ID, SECOND_TENANT_ID)
    scopes: tuple[str, ...] = DEFAULT_SCOPES


@dataclass
class DelayDistribution:
    """How long (API seconds) a ticket stays InProgress before it settles."""

    kind: str = "uniform"
    seconds: float = 30.0
    low: float = 5.0
    high: float = 120.0
    median: float = 30.0
    sigma: float = 0.6


@dataclass
class LimitConfig:
    """Per-app limits from the vendor guide; None switches one off."""

    max_parallel: int | None = 3
    spike_per_minute: float | None = 100.0
    daily_quota: int | None = 6000
    monthly_token_budget: int | None = 400
    send_retry_after: bool = False


@dataclass
class FaultConfig:
    """Injected failures; counts are consumed first, then rates apply (seeded)."""

    server_error_rate: float = 0.0
    server_error_count: int = 0
    server_error_statuses: tuple[int, ...] = (500, 503)
    latency_s: float = 0.0
    latency_max_s: float | None = None
    drop_rate: float = 0.0
    drop_count: int = 0
    drop_phase: str = "before_body"
    revoke_rate: float = 0.0
    revoke_count: int = 0
    include_token_endpoint: bool = False


def _default_clients() -> list[ClientApp]:
    return [ClientApp(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)]


def _default_tenants() -> dict[str, int]:
    return {DEFAULT_TENANT_ID: 300, SECOND_TENANT_ID: 40}


@dataclass
class SandboxConfig:
    """Everything the sandbox does differently from run to run."""

    host: str = "127.0.0.1"
    port: int = 0
    time_scale: float = 1.0
    clock_frozen: bool = False
    seed: int = 1234
    clients: list[ClientApp] = field(default_factory=_default_clients)
    tenants: dict[str, int] = field(default_factory=_default_tenants)
    token_lifetime_s: float = 3600.0
    legacy_token_answer: bool = False
    limits: LimitConfig = field(default_factory=LimitConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    ticket_delay: DelayDistribution = field(default_factory=DelayDistribution)
    ticket_failure_rate: float = 0.0
    failing_person_codes: tuple[str, ...] = ("900001",)
    stalled_person_codes: tuple[str, ...] = ("900002",)
    retry_window_s: float = 6 * 3600.0
    status_format: str = "names"
    records_key: str = "value"
    error_shape: str = "mixed"
    max_file_bytes: int = 4_000_000
    max_request_bytes: int = 10_000_000
    default_take: int = 500
    max_take: int = 1000
    request_log_size: int = 10_000

    def __post_init__(self) -> None:
        validate(self)

    def client(self, client_id: str) -> ClientApp | None:
        """The registered app with this id, if any."""
        for app in self.clients:
            if app.client_id == client_id:
                return app
        return None


def validate(config: SandboxConfig) -> None:
    """Refuse settings that would make the sandbox lie about the real API or leave loopback."""
    checks: list[tuple[bool, str]] = [
        (config.host in LOOPBACK_HOSTS, f"host must be one of {LOOPBACK_HOSTS}"),
        (config.time_scale > 0, "time_scale must be > 0"),
        (config.ticket_delay.kind in DELAY_KINDS, f"ticket_delay.kind must be in {DELAY_KINDS}"),
        (config.status_format in STATUS_FORMATS, f"status_format must be in {STATUS_FORMATS}"),
        (config.error_shape in ERROR_SHAPES, f"error_shape must be in {ERROR_SHAPES}"),
        (config.records_key in RECORDS_KEYS, f"records_key must be in {RECORDS_KEYS}"),
        (config.faults.drop_phase in DROP_PHASES, f"faults.drop_phase must be in {DROP_PHASES}"),
        (0 < config.default_take <= config.max_take, "need 0 < default_take <= max_take"),
        (config.request_log_size > 0, "request_log_size must be > 0"),
        (config.token_lifetime_s > 0, "token_lifetime_s must be > 0"),
    ]
    for rate_name in ("server_error_rate", "drop_rate", "revoke_rate"):
        rate = getattr(config.faults, rate_name)
        checks.append((0.0 <= rate <= 1.0, f"faults.{rate_name} must be within [0, 1]"))
    checks.append((0.0 <= config.ticket_failure_rate <= 1.0, "ticket_failure_rate in [0, 1]"))
    for ok, message in checks:
        if not ok:
            raise ConfigPatchError(message)


def config_to_dict(config: SandboxConfig) -> dict[str, Any]:
    """A JSON-ready view of the config with every client secret masked."""
    view = dataclasses.asdict(config)
    for app in view["clients"]:
        app["client_secret"] = "<redacted>"  # noqa: S105 - a mask, not a secret
    return view


def apply_patch(config: SandboxConfig, patch: dict[str, Any]) -> None:
    """Apply a nested JSON patch in place, all or nothing, with type checks."""
    staged = dataclasses.replace(
        config,
        limits=dataclasses.replace(config.limits),
        faults=dataclasses.replace(config.faults),
        ticket_delay=dataclasses.replace(config.ticket_delay),
    )
    _patch_into(staged, patch, prefix="")
    validate(staged)
    for item in dataclasses.fields(config):
        setattr(config, item.name, getattr(staged, item.name))


_FROZEN_FIELDS = {"host", "port", "clients", "tenants", "request_log_size"}


def _patch_into(target: Any, patch: dict[str, Any], prefix: str) -> None:
    if not isinstance(patch, dict):
        raise ConfigPatchError(f"{prefix or 'patch'} must be a JSON object")
    hints = typing.get_type_hints(type(target))
    names = {item.name for item in dataclasses.fields(target)}
    for key, value in patch.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigPatchError(f"unknown config field {path!r}")
        if not prefix and key in _FROZEN_FIELDS:
            raise ConfigPatchError(f"{path!r} cannot change while the server runs")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _patch_into(current, value, prefix=f"{path}.")
            continue
        setattr(target, key, _coerce(hints[key], value, path))


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check a JSON value against a field's annotation; JSON lists become tuples."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors: list[str] = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, path)
            except ConfigPatchError as exc:
                errors.append(str(exc))
        raise ConfigPatchError("; ".join(errors))
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigPatchError(f"{path} must be a list")
        return tuple(_coerce(item_type, item, path) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigPatchError(f"{path} must be a boolean")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigPatchError(f"{path} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigPatchError(f"{path} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigPatchError(f"{path} must be a string")
        return value
    raise ConfigPatchError(f"{path} cannot be patched")
