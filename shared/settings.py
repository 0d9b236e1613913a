"""Settings for every process, read from environment variables once at each entry point."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every knob of ingress, workers and CLI. The README's configuration table lists them."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    redis_url: str = Field("redis://localhost:6379/0", validation_alias=_env("REDIS_URL"))
    broker_url: str | None = Field(None, validation_alias=_env("FRAMEIO_KIT_BROKER_URL"))
    frameio_app: str | None = Field(None, validation_alias=_env("FRAMEIO_APP"))
    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("WEBHOOK_SECRET"))
    custom_action_secret: SecretStr | None = Field(None, validation_alias=_env("CUSTOM_ACTION_SECRET"))

    queue: str = Field("frameio-kit", validation_alias=_env("FRAMEIO_KIT_QUEUE"))
    visibility_timeout: int = Field(900, ge=2, validation_alias=_env("FRAMEIO_KIT_VISIBILITY_TIMEOUT"))
    max_body_bytes: int = Field(1024 * 1024, ge=1, validation_alias=_env("FRAMEIO_KIT_MAX_BODY_BYTES"))
    body_timeout: float = Field(10.0, gt=0, validation_alias=_env("FRAMEIO_KIT_BODY_TIMEOUT"))
    # Connection limits of the ingress (ingress/server.py, docs/decisions.md "Request limits").
    max_header_bytes: int = Field(16 * 1024, ge=1024, validation_alias=_env("FRAMEIO_KIT_MAX_HEADER_BYTES"))
    header_timeout: float = Field(10.0, gt=0, validation_alias=_env("FRAMEIO_KIT_HEADER_TIMEOUT"))
    keep_alive_timeout: int = Field(5, ge=1, validation_alias=_env("FRAMEIO_KIT_KEEP_ALIVE_TIMEOUT"))
    max_connections: int = Field(1000, ge=16, validation_alias=_env("FRAMEIO_KIT_MAX_CONNECTIONS"))
    enqueue_timeout: float = Field(3.0, gt=0, le=4.5, validation_alias=_env("FRAMEIO_KIT_ENQUEUE_TIMEOUT"))
    max_retries: int = Field(2, ge=0, validation_alias=_env("FRAMEIO_KIT_MAX_RETRIES"))
    retry_backoff: float = Field(2.0, ge=0, validation_alias=_env("FRAMEIO_KIT_RETRY_BACKOFF"))
    retry_backoff_max: float = Field(300.0, ge=0, validation_alias=_env("FRAMEIO_KIT_RETRY_BACKOFF_MAX"))
    dedup_window: int = Field(600, ge=0, validation_alias=_env("FRAMEIO_KIT_DEDUP_WINDOW"))
    dead_letter_max: int = Field(10_000, ge=1, validation_alias=_env("FRAMEIO_KIT_DEAD_LETTER_MAX"))
    dead_letter_retention: int = Field(14 * 86400, ge=60, validation_alias=_env("FRAMEIO_KIT_DEAD_LETTER_RETENTION"))

    # Custom actions (docs/actions.md): Frame.io waits 5 s for an answer.
    action_timeout: float = Field(4.0, gt=0, le=4.5, validation_alias=_env("FRAMEIO_KIT_ACTION_TIMEOUT"))
    action_state: Literal["memory", "redis"] = Field("memory", validation_alias=_env("FRAMEIO_KIT_ACTION_STATE"))
    action_state_ttl: int = Field(3600, ge=10, validation_alias=_env("FRAMEIO_KIT_ACTION_STATE_TTL"))
    action_state_max: int = Field(10_000, ge=1, validation_alias=_env("FRAMEIO_KIT_ACTION_STATE_MAX"))

    # User sign-in (docs/oauth.md): Adobe IMS, the Frame.io API, token encryption keys (first encrypts).
    ims_url: str = Field("https://ims-na1.adobelogin.com", validation_alias=_env("FRAMEIO_KIT_IMS_URL"))
    api_url: str | None = Field(None, validation_alias=_env("FRAMEIO_KIT_API_URL"))
    encryption_keys: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_ENCRYPTION_KEYS"))
    dev: bool = Field(False, validation_alias=_env("FRAMEIO_KIT_DEV"))

    # Operations (docs/operations.md): where the ingress binds, metrics, shutdown.
    host: str = Field("127.0.0.1", validation_alias=_env("FRAMEIO_KIT_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("FRAMEIO_KIT_PORT"))
    worker_metrics_port: int = Field(0, ge=0, le=65535, validation_alias=_env("FRAMEIO_KIT_WORKER_METRICS_PORT"))
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_METRICS_TOKEN"))
    shutdown_grace: float = Field(30.0, ge=0, validation_alias=_env("FRAMEIO_KIT_SHUTDOWN_GRACE"))

    log_level: str = Field("INFO", validation_alias=_env("FRAMEIO_KIT_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("FRAMEIO_KIT_LOG_FORMAT"))

    @property
    def retry_delay_cap(self) -> float:
        """Longest retry delay allowed: a delayed retry waits unacknowledged in a worker, and if it
        outlives the visibility timeout the broker would hand it out a second time."""
        return min(self.retry_backoff_max, self.visibility_timeout / 2)

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def broker_is_redis(self) -> bool:
        """True when Celery's broker is Redis, where the ingress pushes messages itself."""
        return self.celery_broker_url.startswith(("redis://", "rediss://", "unix://"))

    @property
    def completion_ttl(self) -> int:
        """How long a completed event's marker lives: past the de-duplication window and past any
        redelivery of an unacknowledged message (visibility timeout)."""
        return max(self.dedup_window, 3 * self.visibility_timeout, 60)

    @property
    def ledger_stale_after(self) -> float:
        """Seconds an accepted webhook may go without being started before the ledger sweep queues
        it again: past kombu's own redelivery of a dead worker's message (one visibility timeout)."""
        return 2.0 * self.visibility_timeout


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, built on first use."""
    return Settings()
