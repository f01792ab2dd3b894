"""The alert rules and the example Prometheus configuration, checked by Prometheus' own tool.

`promtool` (Debian's `prometheus` package; scripts/test-services.sh installs it) checks the
rules' syntax and runs their unit tests (deploy/prometheus/yfdocs-rules.test.yml). It is
never skipped: without promtool this fails, wherever it runs. And every metric a rule
reads must be one the exporter really exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from config import Settings
from models import make_engine, migrate
from monitoring.exposition import metrics_registry, render

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
RULES = DEPLOY / "yfdocs-rules.yml"
RULE_TESTS = DEPLOY / "yfdocs-rules.test.yml"
CONFIG = DEPLOY / "prometheus.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/test-services.sh)")
    return found


def run(*argv: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool(), *argv], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS: 7 rules found" in run("check", "rules", str(RULES), cwd=DEPLOY)


def test_the_rules_fire_when_they_should_and_only_then() -> None:
    assert "SUCCESS" in run("test", "rules", str(RULE_TESTS), cwd=DEPLOY)


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("yfdocs-metrics-token", "yfdocs-flower-password"):
        (secrets / name).write_text("x\n")
    config = CONFIG.read_text().replace("/etc/prometheus/secrets", str(secrets))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES, tmp_path / RULES.name)

    assert "SUCCESS" in run("check", "config", "prometheus.yml", cwd=tmp_path)


def test_every_metric_a_rule_reads_is_exported(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'yfdocs.sqlite3'}")
    migrate(engine)
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    exported = set(
        re.findall(
            r"^# TYPE (\w+) ", render(metrics_registry(engine, settings))[0].decode(), re.MULTILINE
        )
    )
    engine.dispose()
    exported |= {f"{name}_total" for name in exported}  # counters keep the suffix in samples

    expressions = re.findall(
        r"^\s+expr: (?:>-\n)?((?:.+\n)+?)\s+(?:for|labels):", RULES.read_text(), re.MULTILINE
    )
    read = set(re.findall(r"\b(yfdocs_\w+|celery_\w+)\b", "\n".join(expressions)))

    assert len(expressions) == 7, "every rule's expression was found"
    assert read, "and the metrics they read"
    assert read <= exported, f"read but not exported: {sorted(read - exported)}"
