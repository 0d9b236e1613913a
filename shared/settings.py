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
    enqueue_timeout: float = Field(3.0, gt=0, le=4.5, validation_alias=_env("FRAMEIO_KIT_ENQUEUE_TIMEOUT"))
    max_retries: int = Field(2, ge=0, validation_alias=_env("FRAMEIO_KIT_MAX_RETRIES"))
    retry_backoff: float = Field(2.0, ge=0, validation_alias=_env("FRAMEIO_KIT_RETRY_BACKOFF"))
    retry_backoff_max: float = Field(300.0, ge=0, validation_alias=_env("FRAMEIO_KIT_RETRY_BACKOFF_MAX"))
    dedup_window: int = Field(600, ge=0, validation_alias=_env("FRAMEIO_KIT_DEDUP_WINDOW"))

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, built on first use."""
    return Settings()
