"""A faithful, strict simulator of the Youforce Learning API, on loopback only.

Shares no code with `api_client/`, so it can catch the client's mistakes. See
`SandboxConfig` for what can be bent, and `/_sandbox/` for inspection endpoints.
"""

from __future__ import annotations

from sandbox.cli import serve
from sandbox.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SCOPES,
    DEFAULT_TENANT_ID,
    SECOND_TENANT_ID,
    ClientApp,
    ConfigPatchError,
    DelayDistribution,
    FaultConfig,
    LimitConfig,
    SandboxConfig,
)
from sandbox.server import SandboxServer

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
    "SandboxServer",
    "serve",
]
