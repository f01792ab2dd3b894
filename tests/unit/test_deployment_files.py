"""The deployment files keep their promises: every role present, no secret in them.

PyYAML is not a dependency, so docker-compose.yml is read with a small indentation-based
split into service blocks, enough for these checks (the file is plain block-style YAML).
`tests/deployment/` starts the real stack where a Docker engine runs (CI always).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "yfdocs.env.example"
ENTRYPOINT = ROOT / "docker" / "yfdocs-entrypoint.sh"

YFDOCS_SERVICES = {"migrate", "worker", "beat", "dispatcher", "intake", "flower", "metrics"}
LONG_RUNNING = {
    "postgres",
    "rabbitmq",
    "redis",
    "worker",
    "beat",
    "dispatcher",
    "intake",
    "flower",
    "metrics",
    "sandbox",
}
# Services in the file that `up` leaves out until their profile is asked for.
OPT_IN = {"redis": "redis", "sandbox": "sandbox", "metrics": "metrics"}
ENV_NAMES = [
    "YFDOCS_DATABASE_URL",
    "YFDOCS_BROKER_URL",
    "YFDOCS_DEPLOYMENT",
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


def test_compose_has_every_role(services: dict[str, str]) -> None:
    assert set(services) == {
        "postgres",
        "rabbitmq",
        "redis",
        "migrate",
        "worker",
        "beat",
        "dispatcher",
        "intake",
        "flower",
        "metrics",
        "sandbox",
    }


def test_opt_in_services_sit_behind_their_profiles(services: dict[str, str]) -> None:
    for name, profile in OPT_IN.items():
        assert f'profiles: ["{profile}"]' in services[name], name
    for name in set(services) - set(OPT_IN):
        assert "profiles:" not in services[name], f"{name} starts with a plain `up`"


def test_compose_names_the_official_images_and_lets_variables_replace_them(
    compose: str, services: dict[str, str]
) -> None:
    assert "image: ${YFDOCS_POSTGRES_IMAGE:-postgres:15}" in services["postgres"]
    assert "image: ${YFDOCS_RABBITMQ_IMAGE:-rabbitmq:3-management}" in services["rabbitmq"]
    assert "image: ${YFDOCS_REDIS_IMAGE:-redis:7}" in services["redis"]
    assert "image: ${YFDOCS_IMAGE:-yfdocs:latest}" in services["sandbox"]
    anchor = compose.split("x-yfdocs: &yfdocs", 1)[1].split("\nservices:", 1)[0]
    assert "image: ${YFDOCS_IMAGE:-yfdocs:latest}" in anchor
    assert "BASE_IMAGE: ${YFDOCS_BASE_IMAGE:-python:3.11-slim}" in anchor


def test_compose_stays_within_what_compose_v1_reads(compose: str) -> None:
    top_level = [line.split(":", 1)[0] for line in code_lines(compose) if not line[0].isspace()]
    assert set(top_level) == {"x-yfdocs", "services", "volumes"}, "v1 refuses `name:`"
    assert "required:" not in compose, "optional depends_on is Compose v2 only"


def test_yfdocs_services_share_the_image_and_env_file_but_no_folder(
    compose: str, services: dict[str, str]
) -> None:
    anchor = compose.split("x-yfdocs: &yfdocs", 1)[1].split("\nservices:", 1)[0]
    assert "context: ." in anchor
    assert "env_file: ${YFDOCS_ENV_FILE:-.env}" in anchor
    assert "YFDOCS_DATA_DIR: /var/lib/yfdocs" in anchor
    assert "YFDOCS_BROKER_QUEUE_TYPE: ${YFDOCS_BROKER_QUEUE_TYPE:-quorum}" in anchor
    # Stored PDFs live in the database (or a bucket): workers need no shared volume.
    assert "YFDOCS_DOCUMENT_STORE: ${YFDOCS_DOCUMENT_STORE:-postgres}" in anchor
    assert "volumes:" not in anchor
    assert "yfdocs-data" not in "\n".join(code_lines(compose))
    assert "init: true" in anchor
    for name in YFDOCS_SERVICES:
        assert "<<: *yfdocs" in services[name], name
    assert "<<: *yfdocs" not in services["sandbox"], "the simulator needs no secrets"


def test_every_service_has_an_init_process(compose: str, services: dict[str, str]) -> None:
    for name, block in services.items():
        assert "init: true" in block or "<<: *yfdocs" in block, name


def test_roles_run_the_right_commands(services: dict[str, str]) -> None:
    assert '"yfdocs", "worker", "--no-beat"' in services["worker"]
    assert "replicas: 2" in services["worker"]
    assert 'command: ["yfdocs", "beat"]' in services["beat"]
    assert "replicas: 1" in services["beat"], "beat runs exactly once"
    assert 'command: ["yfdocs", "dispatcher"]' in services["dispatcher"]
    assert "replicas: 1" in services["dispatcher"], "the dispatcher runs exactly once"
    assert '"yfdocs", "intake", "--host", "0.0.0.0", "--port", "8080"' in services["intake"]
    assert "/readyz" in services["intake"]
    assert '"yfdocs", "flower", "--address", "0.0.0.0"' in services["flower"]
    assert "yfdocs.flower_access import healthcheck" in services["flower"], "with credentials"
    assert '"yfdocs", "metrics", "--address", "0.0.0.0"' in services["metrics"]
    assert '["yfdocs", "migrate"]' in services["migrate"]
    assert 'restart: "no"' in services["migrate"], "a one-shot"
    assert "- --host=0.0.0.0" in services["sandbox"]


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


def test_yfdocs_services_wait_for_the_schema(compose: str, services: dict[str, str]) -> None:
    anchor = compose.split("x-yfdocs: &yfdocs", 1)[1].split("\nservices:", 1)[0]
    waits = anchor.split("depends_on:", 1)[1]
    assert "migrate:\n      condition: service_completed_successfully" in waits
    assert "postgres:\n      condition: service_healthy" in waits
    assert "rabbitmq:\n      condition: service_healthy" in waits
    for name in YFDOCS_SERVICES - {"migrate"}:
        assert "depends_on:" not in services[name], f"{name} keeps the anchor's conditions"
    assert "condition: service_healthy" in services["migrate"]


def test_published_ports_are_on_the_host_loopback_only(
    compose: str, services: dict[str, str]
) -> None:
    published = re.findall(r'^\s+- "([^"]+)"\s*$', compose, flags=re.MULTILINE)
    port_mappings = [entry for entry in published if re.fullmatch(r"[\d.:${}A-Z_:-]+", entry)]
    assert "127.0.0.1:${YFDOCS_FLOWER_HOST_PORT:-5555}:5555" in port_mappings
    assert "127.0.0.1:${YFDOCS_SANDBOX_HOST_PORT:-8765}:8765" in port_mappings
    assert len(port_mappings) == sum(block.count("ports:") for block in services.values())
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


def test_env_example_documents_every_entry_with_placeholders(compose: str) -> None:
    example = ENV_EXAMPLE.read_text()
    for name in [*ENV_NAMES, "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"]:
        assert re.search(rf"^{name}=", example, flags=re.MULTILINE), name
    secrets = re.findall(r"^([A-Z_]*(?:PASSWORD|SECRET)[A-Z_]*)=(.*)$", example, re.MULTILINE)
    assert secrets
    assert all(value == "change-me" for _, value in secrets), "placeholders only"
    for url in ("YFDOCS_DATABASE_URL", "YFDOCS_BROKER_URL"):
        assert re.search(rf"^{url}=\S+://yfdocs:change-me@", example, flags=re.MULTILINE)


def test_the_entrypoint_refuses_the_placeholder_outside_sandbox_mode() -> None:
    entrypoint = ENTRYPOINT.read_text()
    assert "PLACEHOLDER=change-me" in entrypoint
    checked = entrypoint.split('CHECKED="', 1)[1].split('"', 1)[0].split()
    assert set(ENV_NAMES) - {"YFDOCS_DEPLOYMENT"} <= set(checked)
    assert {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"} <= set(checked)
    assert "http://sandbox:*" in entrypoint, "sandbox mode only with the simulator's URLs"
    assert 'exec "$@"' in entrypoint


def test_dockerfile_installs_hash_locked_and_runs_unprivileged() -> None:
    dockerfile = DOCKERFILE.read_text()
    instructions = code_lines(dockerfile)
    assert instructions[0] == "ARG BASE_IMAGE=python:3.11-slim"
    assert instructions[1] == "FROM ${BASE_IMAGE} AS python-base"
    assert "RUN /opt/yfdocs/bin/pip install --require-hashes -r requirements.lock" in instructions
    assert "RUN /opt/yfdocs/bin/pip install --no-deps . \\" in instructions
    stages = [line for line in instructions if line.startswith("FROM ")]
    assert stages[-1] == "FROM python-base", "the final stage starts clean"
    final = dockerfile.split(f"\n{stages[-1]}\n", 1)[1]
    assert "build-ca" not in final, "build-time certificates stay in the build stage"
    assert "COPY --from=build /opt/yfdocs /opt/yfdocs" in final
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "a USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["yfdocs-entrypoint"]' in instructions


def test_local_images_run_unprivileged() -> None:
    for name in ("postgres", "rabbitmq"):
        instructions = code_lines((ROOT / "docker" / name / "Dockerfile").read_text())
        assert instructions[0] == "ARG BASE_IMAGE=yfdocs-base:bookworm", name
        users = [line.split()[1] for line in instructions if line.startswith("USER ")]
        assert users == [name], name


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set(code_lines(DOCKERIGNORE.read_text()))
    assert {".env", ".git/", ".venv/", ".yfdocs/", "tests/"} <= ignored
    assert not any(line.startswith("docker/build-ca") for line in ignored), "the build reads it"


def test_the_image_copies_every_package_the_distribution_ships() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    dockerfile = (ROOT / "Dockerfile").read_text()
    missing = sorted(name for name in shipped if f"COPY {name}/ {name}/" not in dockerfile)
    assert not missing, f"the Dockerfile does not copy {missing}"
