"""Settings for every process, read from environment variables once at each entry point."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.core.signature import TOLERANCE_SECONDS

MIN_DEDUP_WINDOW = 2 * TOLERANCE_SECONDS
"""A replayed delivery is accepted for as long as its timestamp is within the signature tolerance
either side of now: the de-duplication window must cover that whole span."""

DEFAULT_JOB_MAX_AGE = 3 * 86400
"""Signed jobs older than this are refused (FRAMEIO_KIT_JOB_MAX_AGE unset): a weekend's backlog or
dead letters still run, a copied message does not stay runnable for ever."""


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class SigningSecrets(BaseSettings):
    """The two signing secrets from the environment. `App` decorators read them afresh at decoration
    time (as v0.0.10 does), so setting the variable before decorating takes effect."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("WEBHOOK_SECRET"))
    custom_action_secret: SecretStr | None = Field(None, validation_alias=_env("CUSTOM_ACTION_SECRET"))

    @field_validator("webhook_secret", "custom_action_secret")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty HMAC key is one everyone knows: "" (what `X=` in an env file gives) means "not
        # set", never a key.
        return value if value is not None and value.get_secret_value().strip() else None


class Settings(SigningSecrets):
    """Every knob of ingress, workers and CLI. The README's configuration table lists them."""

    redis_url: str = Field("redis://localhost:6379/0", validation_alias=_env("REDIS_URL"))
    broker_url: str | None = Field(None, validation_alias=_env("FRAMEIO_KIT_BROKER_URL"))
    frameio_app: str | None = Field(None, validation_alias=_env("FRAMEIO_APP"))

    queue: str = Field("frameio-kit", validation_alias=_env("FRAMEIO_KIT_QUEUE"))
    visibility_timeout: int = Field(900, ge=2, validation_alias=_env("FRAMEIO_KIT_VISIBILITY_TIMEOUT"))
    max_body_bytes: int = Field(1024 * 1024, ge=1, validation_alias=_env("FRAMEIO_KIT_MAX_BODY_BYTES"))
    body_timeout: float = Field(10.0, gt=0, validation_alias=_env("FRAMEIO_KIT_BODY_TIMEOUT"))
    # Connection limits of the ingress (ingress/server.py, docs/decisions.md "Request limits").
    max_header_bytes: int = Field(16 * 1024, ge=1024, validation_alias=_env("FRAMEIO_KIT_MAX_HEADER_BYTES"))
    header_timeout: float = Field(10.0, gt=0, validation_alias=_env("FRAMEIO_KIT_HEADER_TIMEOUT"))
    keep_alive_timeout: int = Field(5, ge=1, validation_alias=_env("FRAMEIO_KIT_KEEP_ALIVE_TIMEOUT"))
    max_connections: int = Field(1000, ge=16, validation_alias=_env("FRAMEIO_KIT_MAX_CONNECTIONS"))
    write_timeout: float = Field(10.0, gt=0, validation_alias=_env("FRAMEIO_KIT_WRITE_TIMEOUT"))
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
    # Per interaction and per account limits of the action state (docs/actions.md "Limits").
    action_state_max_steps: int = Field(50, ge=2, validation_alias=_env("FRAMEIO_KIT_ACTION_STATE_MAX_STEPS"))
    action_state_max_bytes: int = Field(
        256 * 1024, ge=4096, validation_alias=_env("FRAMEIO_KIT_ACTION_STATE_MAX_BYTES")
    )
    action_state_account_quota: int = Field(1000, ge=1, validation_alias=_env("FRAMEIO_KIT_ACTION_STATE_ACCOUNT_QUOTA"))

    # User sign-in (docs/oauth.md): Adobe IMS, the Frame.io API, token encryption keys (first encrypts).
    ims_url: str = Field("https://ims-na1.adobelogin.com", validation_alias=_env("FRAMEIO_KIT_IMS_URL"))
    api_url: str | None = Field(None, validation_alias=_env("FRAMEIO_KIT_API_URL"))
    encryption_keys: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_ENCRYPTION_KEYS"))
    legacy_encryption_key: SecretStr | None = Field(
        None, validation_alias=_env("FRAMEIO_AUTH_ENCRYPTION_KEY"), exclude=True, repr=False
    )
    login_rate_limit: int = Field(10, ge=1, validation_alias=_env("FRAMEIO_KIT_LOGIN_RATE_LIMIT"))
    login_rate_window: int = Field(600, ge=1, validation_alias=_env("FRAMEIO_KIT_LOGIN_RATE_WINDOW"))
    dev: bool = Field(False, validation_alias=_env("FRAMEIO_KIT_DEV"))
    dev_secrets_file: Path = Field(
        Path("~/.frameio-kit/dev-secrets.json"), validation_alias=_env("FRAMEIO_KIT_DEV_SECRETS_FILE")
    )
    # Self-service install (docs/install.md): install-page session cookies, the in-process cache of
    # install records, how long a replaced signing secret stays accepted.
    session_secret: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_SESSION_SECRET"))
    install_cache_ttl: float = Field(30.0, ge=0, validation_alias=_env("FRAMEIO_KIT_INSTALL_CACHE_TTL"))
    install_secret_grace: int = Field(900, ge=0, validation_alias=_env("FRAMEIO_KIT_INSTALL_SECRET_GRACE"))
    # Signed job envelopes (docs/security.md): comma separated, first signs, all verify.
    job_signing_keys: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_JOB_SIGNING_KEYS"))
    # Seconds a signed job stays runnable; unset: DEFAULT_JOB_MAX_AGE or the retry schedule, the longer.
    job_max_age: int | None = Field(None, ge=1, validation_alias=_env("FRAMEIO_KIT_JOB_MAX_AGE"))

    # Frame.io's limits (docs/limits.md): the shared rate limiter, deferrals, handler time limits.
    # off: calls are sent without spending the shared budget (a 429 still raises RateLimited).
    rate_limit: bool = Field(True, validation_alias=_env("FRAMEIO_KIT_RATE_LIMIT"))
    rate_limit_max_wait: float = Field(2.0, ge=0, validation_alias=_env("FRAMEIO_KIT_RATE_LIMIT_MAX_WAIT"))
    rate_limit_max_defer: int = Field(3600, ge=1, validation_alias=_env("FRAMEIO_KIT_RATE_LIMIT_MAX_DEFER"))
    handler_timeout: float = Field(600.0, gt=0, validation_alias=_env("FRAMEIO_KIT_HANDLER_TIMEOUT"))

    # Many tenants (docs/tenants.md): fairness between accounts.
    fairness: Literal["account", "off"] = Field("account", validation_alias=_env("FRAMEIO_KIT_FAIRNESS"))

    # Operators (docs/events.md): event history bounds, the per-handler circuit breaker.
    event_retention: int = Field(7 * 86400, ge=60, validation_alias=_env("FRAMEIO_KIT_EVENT_RETENTION"))
    event_max: int = Field(100_000, ge=0, validation_alias=_env("FRAMEIO_KIT_EVENT_MAX"))
    breaker_failures: int = Field(0, ge=0, validation_alias=_env("FRAMEIO_KIT_BREAKER_FAILURES"))
    breaker_probe: float = Field(60.0, gt=0, validation_alias=_env("FRAMEIO_KIT_BREAKER_PROBE"))

    # Operations (docs/operations.md): where the ingress binds, metrics, shutdown.
    host: str = Field("127.0.0.1", validation_alias=_env("FRAMEIO_KIT_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("FRAMEIO_KIT_PORT"))
    worker_metrics_port: int = Field(0, ge=0, le=65535, validation_alias=_env("FRAMEIO_KIT_WORKER_METRICS_PORT"))
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("FRAMEIO_KIT_METRICS_TOKEN"))
    shutdown_grace: float = Field(30.0, ge=0, validation_alias=_env("FRAMEIO_KIT_SHUTDOWN_GRACE"))

    log_level: str = Field("INFO", validation_alias=_env("FRAMEIO_KIT_LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("FRAMEIO_KIT_LOG_FORMAT"))
    log_flush_interval: float = Field(0.2, ge=0, le=10, validation_alias=_env("FRAMEIO_KIT_LOG_FLUSH_INTERVAL"))

    # Tracing (docs/operations.md) follows the standard OpenTelemetry variables; the SDK reads the
    # others (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES...) itself.
    otel_endpoint: str | None = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_traces_exporter: str = Field("otlp", validation_alias=_env("OTEL_TRACES_EXPORTER"))
    otel_sdk_disabled: bool = Field(False, validation_alias=_env("OTEL_SDK_DISABLED"))
    otel_service_name: str | None = Field(None, validation_alias=_env("OTEL_SERVICE_NAME"))

    @field_validator("metrics_token", "session_secret")
    @classmethod
    def _blank_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("dedup_window")
    @classmethod
    def _dedup_covers_replay_span(cls, value: int) -> int:
        if 0 < value < MIN_DEDUP_WINDOW:
            raise ValueError(
                f"FRAMEIO_KIT_DEDUP_WINDOW={value} is shorter than the {MIN_DEDUP_WINDOW} s a signed delivery "
                f"can be replayed (twice the {TOLERANCE_SECONDS} s signature tolerance): use at least "
                f"{MIN_DEDUP_WINDOW}, or 0 to turn de-duplication off"
            )
        return value

    @model_validator(mode="after")
    def _job_max_age_covers_retries(self) -> Settings:
        if self.job_max_age is not None and self.job_max_age < self.job_max_age_floor:
            raise ValueError(
                f"FRAMEIO_KIT_JOB_MAX_AGE={self.job_max_age} is shorter than the {self.job_max_age_floor} s a "
                "genuine job can take to its last attempt (retries, and a redelivery per attempt after a worker "
                "crash): workers would refuse it mid-retry. Use at least that, or leave it unset"
            )
        return self

    @model_validator(mode="after")
    def _legacy_encryption_key(self) -> Settings:
        """v0.0.10's FRAMEIO_AUTH_ENCRYPTION_KEY (one Fernet key) stands in when FRAMEIO_KIT_ENCRYPTION_KEYS
        is unset or blank."""
        current = self.encryption_keys.get_secret_value().strip() if self.encryption_keys else ""
        if not current and self.legacy_encryption_key and self.legacy_encryption_key.get_secret_value().strip():
            self.encryption_keys = self.legacy_encryption_key
        return self

    @property
    def retry_delay_cap(self) -> float:
        """Longest retry delay allowed: a delayed retry waits unacknowledged in a worker, and if it
        outlives the visibility timeout the broker would hand it out a second time."""
        return min(self.retry_backoff_max, self.visibility_timeout / 2)

    @property
    def tracing_enabled(self) -> bool:
        """Tracing is on when an OTLP endpoint is set, the SDK is not disabled and the exporter is OTLP."""
        exporters = {e.strip().lower() for e in self.otel_traces_exporter.split(",")}
        endpoint = bool(self.otel_endpoint and self.otel_endpoint.strip())
        return endpoint and not self.otel_sdk_disabled and "otlp" in exporters

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def broker_is_redis(self) -> bool:
        """True when Celery's broker is Redis, where the ingress pushes messages itself."""
        return self.celery_broker_url.startswith(("redis://", "rediss://", "unix://"))

    @property
    def queue_redis_url(self) -> str:
        """The Redis that holds queue traffic: the queue itself and its delivery bookkeeping (de-duplication
        keys, the in-flight ledger, completion markers, attempt histories), which must sit beside the queue
        to be updated atomically with it. The broker when it is Redis; REDIS_URL for any other broker.
        Everything else (tokens, installs, action state, dead letters) lives in REDIS_URL."""
        return self.celery_broker_url if self.broker_is_redis else self.redis_url

    @property
    def completion_ttl(self) -> int:
        """How long a completed event's marker lives: past the de-duplication window and past any
        redelivery of an unacknowledged message (visibility timeout)."""
        return max(self.dedup_window, 3 * self.visibility_timeout, 60)

    @property
    def job_max_age_floor(self) -> int:
        """The longest a genuine job can take from signing to its last attempt without an outage: every
        attempt held up once by a dead worker (the ledger sweep queues it again after `ledger_stale_after`),
        every retry waiting its longest delay. Retries re-send the original envelope, issued-at and all."""
        attempts = self.max_retries + 1
        return int(attempts * self.ledger_stale_after + self.max_retries * self.retry_delay_cap) + 1

    @property
    def job_max_age_seconds(self) -> int:
        """Seconds a signed job stays runnable (FRAMEIO_KIT_JOB_MAX_AGE, or the longer of the default and the floor)."""
        return self.job_max_age if self.job_max_age is not None else max(DEFAULT_JOB_MAX_AGE, self.job_max_age_floor)

    @property
    def ledger_stale_after(self) -> float:
        """Seconds an accepted webhook may go without being started before the ledger sweep queues
        it again: past kombu's own redelivery of a dead worker's message (one visibility timeout)."""
        return 2.0 * self.visibility_timeout


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, built on first use."""
    return Settings()
