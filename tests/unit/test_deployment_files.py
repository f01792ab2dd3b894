"""The deployment files keep their promises: every role present, no secret in them.

No Docker engine runs in CI and PyYAML is not a dependency, so docker-compose.yml is read
with a small indentation-based split into service blocks, enough for these checks (the file
is plain block-style YAML). `docker compose config` is the full check where Docker exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

YFDOCS_SERVICES = {"migrate", "worker", "beat", "flower"}
LONG_RUNNING = {"postgres", "rabbitmq", "redis", "worker", "beat", "flower"}
ENV_NAMES = [
    "YFDOCS_DATABASE_URL",
    "YFDOCS_BROKER_URL",
    "YFDOCS_CLIENT_ID",
    "YFDOCS_CLIENT_SECRET",
    "YFDOCS_TENANT_ID",
    "YFDOCS_FLOWER_PASSWORD",
]
SECRET_KEY = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN)\b", re.IGNORECASE)


def code_lines(text: str) -> list[str]:
    """The lines that are not comments (whole-line or trailing)."""
    lines = []
    for line in text.splitlines():
        without_comment = re.sub(r"\s+#.*$", "", line)
        if without_comment.strip() and not without_comment.lstrip().startswith("#"):
            lines.append(without_comment)
    return lines


def service_blocks(text: str) -> dict[str, str]:
    """Each service's lines under the top-level `services:` key, by name."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    inside = False
    for line in code_lines(text):
        if not line.startswith(" "):
            inside = line.rstrip() == "services:"
            current = None
            continue
        if not inside:
            continue
        header = re.fullmatch(r" {2}([A-Za-z0-9_-]+):\s*", line)
        if header:
            current = header.group(1)
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


@pytest.fixture(scope="module")
def compose() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def services(compose: str) -> dict[str, str]:
    return service_blocks(compose)


def test_compose_has_every_role_and_no_intake_yet(services: dict[str, str]) -> None:
    assert set(services) == {"postgres", "rabbitmq", "redis", "migrate", "worker", "beat", "flower"}


def test_compose_pins_the_service_images(services: dict[str, str]) -> None:
    assert "image: postgres:15" in services["postgres"]
    assert "image: rabbitmq:3-management" in services["rabbitmq"]
    assert 'profiles: ["redis"]' in services["redis"], "Redis is opt-in"


def test_yfdocs_services_share_the_image_env_file_and_data_volume(
    compose: str, services: dict[str, str]
) -> None:
    anchor = compose.split("x-yfdocs: &yfdocs", 1)[1].split("\nservices:", 1)[0]
    assert "build: ." in anchor
    assert "env_file: .env" in anchor
    assert "YFDOCS_DATA_DIR: /var/lib/yfdocs" in anchor
    assert "- yfdocs-data:/var/lib/yfdocs" in anchor
    for name in YFDOCS_SERVICES:
        assert "<<: *yfdocs" in services[name], name


def test_roles_run_the_right_commands(services: dict[str, str]) -> None:
    assert '"yfdocs", "worker", "--no-beat"' in services["worker"]
    assert "replicas: 2" in services["worker"]
    assert 'command: ["yfdocs", "beat"]' in services["beat"]
    assert "replicas: 1" in services["beat"], "beat runs exactly once"
    assert '"yfdocs", "flower", "--address", "0.0.0.0"' in services["flower"]
    assert '["yfdocs", "migrate"]' in services["migrate"]
    assert 'restart: "no"' in services["migrate"], "a one-shot"


def test_long_running_services_have_healthchecks_and_restart(
    compose: str, services: dict[str, str]
) -> None:
    anchor_restarts = "restart: unless-stopped" in compose.split("\nservices:", 1)[0]
    for name in LONG_RUNNING:
        block = services[name]
        assert "healthcheck:" in block, name
        assert "restart: unless-stopped" in block or ("<<: *yfdocs" in block and anchor_restarts), (
            name
        )


def test_workers_wait_for_the_schema(compose: str) -> None:
    assert "condition: service_completed_successfully" in compose


def test_published_ports_are_on_the_host_loopback_only(compose: str) -> None:
    published = re.findall(r'^\s+- "([^"]+)"\s*$', compose, flags=re.MULTILINE)
    port_mappings = [entry for entry in published if re.fullmatch(r"[\d.:]+", entry)]
    assert "127.0.0.1:5555:5555" in port_mappings
    assert all(entry.startswith("127.0.0.1:") for entry in port_mappings), port_mappings


def test_compose_documents_the_environment_it_needs(compose: str) -> None:
    comments = "\n".join(line for line in compose.splitlines() if line.lstrip().startswith("#"))
    missing = [name for name in ENV_NAMES if f"{name}=" not in comments]
    assert missing == []


def test_compose_holds_no_secret_value(compose: str) -> None:
    literal_secrets = [
        line.strip()
        for line in code_lines(compose)
        if ":" in line
        and SECRET_KEY.search(line.split(":", 1)[0])
        and not line.split(":", 1)[1].strip().startswith("${")
    ]
    assert literal_secrets == []
    assert "sandbox-secret" not in compose
    assert not re.search(r"://[^/\s:<>]+:[^@\s<>]+@", compose), "a URL with a password in it"


def test_dockerfile_installs_hash_locked_and_runs_unprivileged() -> None:
    dockerfile = DOCKERFILE.read_text()
    instructions = code_lines(dockerfile)
    assert instructions[0] == "FROM python:3.11-slim"
    assert "RUN pip install --require-hashes -r requirements.lock" in instructions
    assert "RUN pip install --no-deps . \\" in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "a USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set(code_lines(DOCKERIGNORE.read_text()))
    assert {".env", ".git/", ".venv/", ".yfdocs/", "tests/"} <= ignored
