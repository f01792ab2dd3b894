"""The one settings class, read at the entry points and passed down as arguments.

Every name is `YFDOCS_` + the field name in upper case; a `.env` file in the working
directory is read too. Secrets are `SecretStr` so that they never print by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api_client.endpoints import check_endpoint_url
from config.budgets import TimeBudgets, time_budgets
from config.document_store import POSTGRES_MAX_DOCUMENT_BYTES, StoreLocation

__all__ = ["Settings", "parse_tenant_weights"]


def parse_tenant_weights(text: str) -> dict[str, float]:
    """`YFDOCS_TENANT_WEIGHTS` as a mapping: `"4028868:2,1234:0.5"`; ValueError when bad."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        tenant, sep, value = item.partition(":")
        try:
            weight = float(value) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if not tenant.strip() or not weight > 0:
            raise ValueError(
                f"YFDOCS_TENANT_WEIGHTS entry {item!r}: expected tenant:weight with a weight > 0"
            )
        weights[tenant.strip()] = weight
    return weights


class Settings(BaseSettings):
    """Configuration of a yfdocs process (producer, worker, beat, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="YFDOCS_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Path(".yfdocs")
    # URLs hold passwords: SecretStr keeps them out of every repr, log line and traceback.
    database_url: SecretStr | None = None
    broker_url: SecretStr | None = None
    broker_queue_type: Literal["classic", "quorum"] = Field(
        "classic",
        description="RabbitMQ only: the type yfdocs declares its queue with. A queue that "
        "already exists keeps its type, so switching needs a new (or emptied) virtual host",
    )
    api_url: str = "https://api.youforce.com"
    token_url: str = "https://connect.visma.com/connect/token"  # noqa: S105 (a URL)
    plain_http_hosts: str = Field(
        "",
        description="comma-separated hosts the client may reach over plain http besides "
        "loopback: a sandbox on a private container network; never a Youforce host",
    )
    client_id: str | None = None
    client_secret: SecretStr | None = None
    tenant_id: str | None = None

    max_concurrency: int = Field(3, ge=1)
    # The API spaces arrivals 0.6 s apart; the governor spaces the moments calls may start.
    # Scheduling and network jitter lie between the two, and a 429 pauses the whole fleet,
    # so the default keeps a margin. It costs nothing: the daily quota binds long before.
    min_interval: float = Field(0.65, ge=0)
    rate_per_minute: int = Field(100, ge=1)
    daily_quota: int = Field(6000, ge=1)
    quota_window: float = Field(
        86400, gt=0, description="seconds in a quota window; a day is the calendar day"
    )
    quota_timezone: str = Field("UTC", description="the time zone whose days the quota counts")
    rate_limit_backoff: float = Field(
        60,
        gt=0,
        description="the fleet's wait after a 429 that names neither its limit nor a Retry-After",
    )
    token_monthly_budget: int = Field(
        400, ge=2, description="token requests per budget window, for all tenants together"
    )
    token_reserve: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="the fraction of the token budget held back for refused credentials and "
        "revoked tokens; spent only on live work in the budget window's last day",
    )
    token_budget_window: float | None = Field(
        None,
        gt=0,
        description="seconds of a token budget window; unset: the calendar month in "
        "YFDOCS_QUOTA_TIMEZONE (a shorter one is a fixed slice of UTC time, for time-scaled "
        "sandboxes and tests)",
    )
    dispatch_interval: float = Field(
        1.0, gt=0, description="seconds between two passes of the dispatcher"
    )
    dispatch_ready_factor: float = Field(
        2.0,
        ge=1,
        description="the broker holds at most this many times YFDOCS_MAX_CONCURRENCY messages "
        "that no worker has claimed yet",
    )
    tenant_weights: str = Field(
        "",
        description="tenant:weight pairs (comma-separated) for sharing the calls and slots "
        "between tenants within a priority class; a tenant not named weighs 1",
    )
    credentials_retry: float = Field(
        900,
        gt=0,
        description="the first wait after the token endpoint refused the credentials; it "
        "doubles with each refusal up to a day, and new credentials are tried at once",
    )
    max_file_bytes: int = Field(4_000_000, ge=1)
    document_store: str | None = Field(
        None,
        description="where stored PDFs live: filesystem, postgres or s3://bucket/prefix; "
        "by default postgres when the database is PostgreSQL, else filesystem. Once "
        "`yfdocs documents move` has run, the database names the store and this only "
        "has to agree with it",
    )
    pdf_active_content: Literal["refuse", "allow"] = Field(
        "refuse",
        description="refuse PDFs with JavaScript, a Launch action, embedded files or an XFA "
        "form (a personnel file is no place for content that acts when opened), or allow them",
    )

    poll_first_delay: float = Field(30, ge=0)
    poll_max_delay: float = Field(900, gt=0)
    poll_deadline: float = Field(25200, gt=0)
    lease_seconds: float = Field(120, gt=0)
    sweep_interval: float = Field(15, gt=0)
    retention_days: float = Field(30, ge=0)
    retry_base_delay: float = Field(2.0, gt=0, description="first backoff after a transient error")
    retry_max_delay: float = Field(600.0, gt=0, description="longest backoff between two attempts")
    retry_max_attempts: int = Field(10, ge=1, description="upload attempts before a job fails")
    republish_after: float = Field(
        1800, gt=0, description="a queued job whose message is this old is published again"
    )
    max_countdown: float = Field(
        300,
        gt=0,
        description="accepted for older env files and unused: since the dispatcher, every "
        "wait lives in the database and no message carries a countdown",
    )

    connect_timeout: float = Field(5, gt=0)
    read_timeout: float = Field(60, gt=0)
    token_refresh_margin: float = Field(300, ge=0)
    status_number_map: str = "0:InProgress,1:Complete,2:Failed,3:Rejected"

    # -- the HTTP intake (`yfdocs intake`) and learner mapping (`yfdocs sync-persons`) ----
    persons_sync_interval: float = Field(
        43200,
        gt=0,
        description="seconds between the beat's persons syncs for learner mapping; each sync "
        "of a tenant costs a call (a page) and, when no upload holds one, a token",
    )
    xapi_certificate_usage_type: str = Field(
        "http://id.tincanapi.com/attachment/certificate-of-completion",
        description="the xAPI attachment usageType that marks a statement's certificate",
    )
    canvas_jwks_url: str | None = Field(
        None,
        description="where Canvas publishes the keys that sign Live Events (https); signed "
        "course_completed events are checked against it",
    )
    canvas_certificate_url: str | None = Field(
        None,
        description="the certificate of a Canvas completion, as a URL template with "
        "{course_id}, {user_id}, {user_sis_id}, {user_login} or {course_sis_id}",
    )
    intake_fetch_timeout: float = Field(
        15, gt=0, description="longest time one certificate download may take, redirects included"
    )
    intake_fetch_ca_bundle: Path | None = Field(
        None, description="CA certificates for certificate downloads (default: certifi's)"
    )
    intake_max_connections: int = Field(
        64, ge=1, description="connections the intake serves at once; more are answered 503"
    )

    flower_user: str = "admin"
    flower_password: SecretStr | None = Field(
        None,
        description="Flower's basic-auth password; without one, `yfdocs flower` generates one "
        "and keeps it in the data dir (flower-password, mode 0600)",
    )
    flower_port: int = 5555
    flower_broker_api: SecretStr | None = Field(
        None,
        description="RabbitMQ's management API for Flower's broker page, e.g. "
        "http://user:password@rabbitmq:15672/api/ (it holds a password)",
    )

    metrics_port: int = Field(9808, description="`yfdocs metrics`' port")
    metrics_token: SecretStr | None = Field(
        None,
        description="a bearer token `yfdocs metrics` and the intake's /metrics require of "
        "every scrape (none: no check, and then only this machine may scrape)",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as plain text, or one JSON object a line"
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _endpoints_are_safe(self) -> Settings:
        # The client secret and the bearer token travel to these, and Canvas's signing keys
        # come from the JWKS URL: refused at start, in one line, when they would cross a
        # network in clear.
        endpoints = [("YFDOCS_API_URL", self.api_url), ("YFDOCS_TOKEN_URL", self.token_url)]
        if self.canvas_jwks_url is not None:
            endpoints.append(("YFDOCS_CANVAS_JWKS_URL", self.canvas_jwks_url))
        for name, url in endpoints:
            try:
                check_endpoint_url(url, plain_http_hosts=self.plain_http_host_names)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self

    @property
    def plain_http_host_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.plain_http_hosts.split(",") if name.strip())

    @field_validator("tenant_weights")
    @classmethod
    def _weights_parse(cls, value: str) -> str:
        parse_tenant_weights(value)  # raises ValueError with one line naming the entry
        return value

    @property
    def tenant_weight_map(self) -> dict[str, float]:
        return parse_tenant_weights(self.tenant_weights)

    @model_validator(mode="after")
    def _budgets_fit(self) -> Settings:
        self.time_budgets  # noqa: B018 (raises ValueError naming the settings that clash)
        return self

    @model_validator(mode="after")
    def _document_store_fits(self) -> Settings:
        # Refused at start, in one line: a store that cannot hold this deployment's PDFs.
        try:
            location = self.document_store_location
        except ValueError as exc:
            raise ValueError(f"YFDOCS_DOCUMENT_STORE: {exc}") from None
        if location.kind == "postgres" and not self.uses_postgres_database:
            raise ValueError(
                "YFDOCS_DOCUMENT_STORE=postgres keeps the PDFs in the database, which must "
                "then be PostgreSQL (YFDOCS_DATABASE_URL); use filesystem or s3://bucket/prefix"
            )
        if location.kind == "postgres" and self.max_file_bytes > POSTGRES_MAX_DOCUMENT_BYTES:
            raise ValueError(
                f"YFDOCS_MAX_FILE_BYTES={self.max_file_bytes} is more than the postgres "
                f"document store holds ({POSTGRES_MAX_DOCUMENT_BYTES} bytes a document); "
                "lower it or use YFDOCS_DOCUMENT_STORE=s3://bucket/prefix"
            )
        return self

    @property
    def document_store_location(self) -> StoreLocation:
        """The configured store, or the default: postgres on PostgreSQL, else filesystem."""
        if self.document_store is not None and self.document_store.strip():
            return StoreLocation.parse(self.document_store)
        return StoreLocation("postgres" if self.uses_postgres_database else "filesystem")

    @property
    def uses_postgres_database(self) -> bool:
        return self.resolved_database_url.startswith("postgresql")

    @property
    def time_budgets(self) -> TimeBudgets:
        """The step's time budgets, derived from the lease and the HTTP timeouts."""
        return time_budgets(
            lease_seconds=self.lease_seconds,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data dir."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'yfdocs.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        """The configured broker, or the embedded `filesystem://` transport."""
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        return "filesystem://localhost/"

    @property
    def uses_amqp_broker(self) -> bool:
        return self.resolved_broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"
