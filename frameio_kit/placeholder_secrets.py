"""Start-up refusal of the secrets .env.example ships as placeholders, so that a container started
from an unedited copy exits 2 with one line naming the variable (and compose's `on-failure:3` stops
retrying) instead of serving with a public secret or failing later, request by request."""

from __future__ import annotations

from shared.errors import ConfigurationError
from shared.settings import Settings

PLACEHOLDER = "change-me"
"""The value .env.example ships for every secret it fills in."""

MIN_SESSION_SECRET_CHARS = 32
"""Like a job-signing key: the install session cookies' HMAC key must not be guessable."""


def _is_placeholder(value: str) -> bool:
    return value.strip().lower() == PLACEHOLDER


def refuse_placeholder_secrets(settings: Settings) -> None:
    """Raise ConfigurationError naming the first secret that is .env.example's placeholder, or a
    FRAMEIO_KIT_SESSION_SECRET that is too short (WEBHOOK_SECRET and CUSTOM_ACTION_SECRET are
    checked by `refuse_known_secrets`, which the ingress alone needs)."""
    if settings.job_signing_keys is not None:
        keys = settings.job_signing_keys.get_secret_value().split(",")
        if any(_is_placeholder(key) for key in keys):
            raise ConfigurationError(
                f"FRAMEIO_KIT_JOB_SIGNING_KEYS still has .env.example's placeholder ({PLACEHOLDER!r}): generate one "
                'with python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value()
        if _is_placeholder(secret):
            raise ConfigurationError(
                f"FRAMEIO_KIT_SESSION_SECRET still has .env.example's placeholder ({PLACEHOLDER!r}): generate one "
                'with python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        if len(secret.strip()) < MIN_SESSION_SECRET_CHARS:
            raise ConfigurationError(
                f"FRAMEIO_KIT_SESSION_SECRET is shorter than {MIN_SESSION_SECRET_CHARS} characters: generate one "
                'with python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
