"""The one settings class, read at the entry points and passed down as arguments.

Every name is `YFDOCS_` + the field name in upper case; a `.env` file in the working
directory is read too. Secrets are `SecretStr` so that they never print by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of a yfdocs process (producer, worker, beat, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="YFDOCS_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Path(".yfdocs")
    database_url: str | None = None
    broker_url: str | None = None
    api_url: str = "https://api.youforce.com"
    token_url: str = "https://connect.visma.com/connect/token"  # noqa: S105 (a URL)
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
    token_monthly_budget: int = Field(400, ge=1)
    credentials_retry: float = Field(
        900,
        gt=0,
        description="the first wait after the token endpoint refused the credentials; it "
        "doubles with each refusal up to a day, and new credentials are tried at once",
    )
    max_file_bytes: int = Field(4_000_000, ge=1)
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
        300, gt=0, description="longest wait kept in the broker; longer waits live in the DB"
    )

    connect_timeout: float = Field(5, gt=0)
    read_timeout: float = Field(60, gt=0)
    token_refresh_margin: float = Field(300, ge=0)
    status_number_map: str = "0:InProgress,1:Complete,2:Failed,3:Rejected"

    flower_user: str = "admin"
    flower_password: SecretStr | None = None
    flower_port: int = 5555

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Settings:
        # A task is stopped at 80% of its lease; a call must fit inside that, or every
        # slow answer would look like a lost worker.
        if self.lease_seconds * 0.8 <= self.connect_timeout + self.read_timeout:
            raise ValueError(
                "YFDOCS_LEASE_SECONDS must exceed (YFDOCS_CONNECT_TIMEOUT + "
                "YFDOCS_READ_TIMEOUT) / 0.8"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'yfdocs.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        """The configured broker, or the embedded `filesystem://` transport."""
        return self.broker_url or "filesystem://localhost/"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"
