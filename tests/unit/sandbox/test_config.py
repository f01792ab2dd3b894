"""Runtime config patches: typed, all or nothing, no secrets in the view."""

from __future__ import annotations

import pytest

from sandbox.config import ConfigPatchError, SandboxConfig, apply_patch, config_to_dict


def test_patch_sets_nested_fields_with_types() -> None:
    config = SandboxConfig()
    apply_patch(
        config,
        {
            "faults": {"server_error_rate": 1, "server_error_statuses": [503]},
            "limits": {"max_parallel": None, "daily_quota": 5},
            "status_format": "numbers",
            "ticket_delay": {"kind": "fixed", "seconds": 3},
        },
    )
    assert config.faults.server_error_rate == 1.0
    assert config.faults.server_error_statuses == (503,)
    assert config.limits.max_parallel is None
    assert config.limits.daily_quota == 5
    assert config.status_format == "numbers"
    assert config.ticket_delay.seconds == 3.0


@pytest.mark.parametrize(
    "patch",
    [
        {"no_such_field": 1},
        {"limits": {"daily_quota": "many"}},
        {"status_format": "words"},
        {"faults": {"drop_rate": 2.0}},
        {"port": 1234},
        {"host": "0.0.0.0"},
        {"limits": {"max_parallel": True}},
    ],
)
def test_bad_patches_are_refused_and_change_nothing(patch: dict[str, object]) -> None:
    config = SandboxConfig()
    before = config_to_dict(config)
    with pytest.raises(ConfigPatchError):
        apply_patch(config, {"status_format": "numbers", **patch})
    assert config_to_dict(config) == before


def test_config_view_masks_client_secrets() -> None:
    view = config_to_dict(SandboxConfig())
    assert "sandbox-secret" not in repr(view)
    assert view["clients"][0]["client_id"] == "sandbox-client"


def test_non_loopback_host_is_refused() -> None:
    with pytest.raises(ConfigPatchError):
        SandboxConfig(host="0.0.0.0")
