"""Fixtures for the Youforce sandbox: a fresh server per test, and a factory for variants.

`sandbox` switches the usage limits off (functional tests make calls back to back) but keeps
every validation rule; tests of the limits themselves build their own with `sandbox_factory`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import DelayDistribution, LimitConfig, SandboxConfig, SandboxServer

SandboxFactory = Callable[..., SandboxServer]


def relaxed_config(**overrides: Any) -> SandboxConfig:
    """Default config with limits off and quick tickets; dict overrides patch nested parts."""
    base = SandboxConfig(
        limits=LimitConfig(
            max_parallel=None, spike_per_minute=None, daily_quota=None, monthly_token_budget=None
        ),
        ticket_delay=DelayDistribution(kind="fixed", seconds=1.0),
    )
    for name, value in overrides.items():
        current = getattr(base, name)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            value = dataclasses.replace(current, **value)  # type: ignore[type-var]
        setattr(base, name, value)
    dataclasses.replace(base)  # runs the config's own validation on the result
    return base


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Builds and starts sandboxes from config overrides; stops every one at teardown."""
    servers: list[SandboxServer] = []

    def make(**overrides: Any) -> SandboxServer:
        server = SandboxServer(relaxed_config(**overrides)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    """A running sandbox with strict validation and no usage limits."""
    return sandbox_factory()
