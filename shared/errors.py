"""The exception tree: every exception the product raises on purpose, all exported by `frameio_kit`.

FrameioKitError
├── ConfigurationError           bad configuration, found at decoration or start-up (also a ValueError)
│   ├── AppLoadError             FRAMEIO_APP missing or not importable
│   └── EncryptionKeyMismatch    no configured key opens the key canary: refuse to start
├── RequestRejected              a request we refuse; carries the 4xx status and a public message
│   ├── PayloadTooLarge          413
│   ├── RequestTimedOut          408 (body not received within FRAMEIO_KIT_BODY_TIMEOUT)
│   ├── InvalidPayload           400 (not JSON, not an object) / 422 (schema)
│   │   └── EventValidationError 422: JSON, but not the event's schema
│   ├── SignatureInvalid         401 (missing, malformed, stale or wrong signature)
│   │                                v0.0.10 name: SignatureVerificationError (the same class)
│   └── ActionStepRefused        403/413/429: an action step of another owner, or past the state limits
├── ServiceUnavailable           a dependency failed: 503, Frame.io retries
│   ├── BrokerUnavailable        the queue did not take the message in time
│   ├── SecretResolutionError    a secret resolver raised or answered an empty secret
│   └── ActionStateUnavailable   the action state store (Redis) did not answer
├── StepStillRunning             a retried action step gave up waiting for the first run's answer
├── OAuthError                   user sign-in and stored tokens
│   ├── GrantRejected            IMS refused a code or refresh token (4xx): sign in again
│   │   ├── TokenExchangeError   ... the authorization code (sign-in)
│   │   └── TokenRefreshError    ... the refresh token
│   ├── IdentityProviderUnavailable  IMS down, 5xx or malformed answer: retry later
│   ├── TokenUnreadable          a stored record no configured key decrypts, or that does not parse
│   └── LockUnavailable          another process held a user's refresh lock past the wait budget
├── InstallationError            self-service install (docs/install.md)
│   ├── InstallationNotFoundError  no install record for the event's account and workspace
│   ├── InstallFailed            an install operation stopped; its public message goes on the page
│   └── FrameioApiError          Frame.io refused or failed a webhook/action call during install
├── ReplayRefused                a dead letter not queued again: its signed job does not verify, or expired
├── DevError                     `frameio-kit dev` cannot start
├── RedisServerUnavailable       frameio_kit.testing: no `redis-server` on PATH, or it did not start
├── HandlerFailed                stands in for a handler's exception in Celery's retry: scrubbed text only
├── RateLimited                  a Frame.io call had no rate budget in time, or was answered 429: retry_after
├── HandlerTimeout               a worker handler ran past its time limit and was cancelled
└── PermanentError               raised by a handler: do not retry, dead-letter at once
"""

from __future__ import annotations


class FrameioKitError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigurationError(FrameioKitError, ValueError):
    """The integration or the environment is misconfigured. A `ValueError` too, as v0.0.10's
    decorators raise `ValueError` for a missing secret and callers catch that."""


class AppLoadError(ConfigurationError):
    """The integration named by FRAMEIO_APP / the APP argument cannot be loaded."""


class EncryptionKeyMismatch(ConfigurationError):
    """No configured key opens the key canary: this process would not read the stored tokens."""


class RequestRejected(FrameioKitError):
    """A request refused with a 4xx. `public_message` is safe to send back; nothing else is."""

    status_code = 400

    def __init__(self, public_message: str, *, status_code: int | None = None) -> None:
        super().__init__(public_message)
        self.public_message = public_message
        if status_code is not None:
            self.status_code = status_code


class PayloadTooLarge(RequestRejected):
    status_code = 413


class RequestTimedOut(RequestRejected):
    status_code = 408


class InvalidPayload(RequestRejected):
    status_code = 400


class EventValidationError(InvalidPayload):
    """The body is JSON but does not match the event's model; `validation_errors` names the fields."""

    status_code = 422

    def __init__(self, event_type: str, validation_errors: str) -> None:
        super().__init__(f"payload does not match the event schema: {validation_errors}")
        self.event_type = event_type
        self.validation_errors = validation_errors


class SignatureInvalid(RequestRejected):
    status_code = 401

    def __init__(self, public_message: str = "Invalid signature.") -> None:
        super().__init__(public_message)


SignatureVerificationError = SignatureInvalid
"""v0.0.10's name for a signature that does not verify."""


class ActionStepRefused(RequestRejected):
    """An action step not run: its interaction belongs to another account, action or user (403), it
    is full (413), or its account holds its quota of interactions (429). The caller gets a Message
    saying so (`public_message`); the interaction's state is left untouched. `reason` is for logs."""

    def __init__(self, public_message: str, *, status_code: int, reason: str) -> None:
        super().__init__(public_message, status_code=status_code)
        self.reason = reason


class ServiceUnavailable(FrameioKitError):
    """Something we depend on failed: answered 503 with `public_message` only, so Frame.io retries."""

    public_message = "service unavailable, retry later"


class BrokerUnavailable(ServiceUnavailable):
    """The broker did not confirm the message within the enqueue time budget."""

    public_message = "queue unavailable, retry later"


class SecretResolutionError(ServiceUnavailable):
    """A secret resolver raised or answered an empty secret: a server fault, not the caller's.
    The message (for logs) names the event type, never the resolver's exception text."""

    public_message = "Configuration error."

    def __init__(self, event_type: str, message: str | None = None) -> None:
        self.event_type = event_type
        self.message = message or f"failed to resolve the signing secret for event type {event_type!r}"
        super().__init__(self.message)


class ActionStateUnavailable(ServiceUnavailable):
    """The state store (Redis) did not answer: the step cannot be run safely."""


class StepStillRunning(FrameioKitError):
    """A retried step waited for the first run's answer longer than it could."""


class OAuthError(FrameioKitError):
    """Base of the user sign-in and token errors."""


class GrantRejected(OAuthError):
    """IMS refused a code or refresh token (4xx: `invalid_grant`, revoked, expired): sign in again."""


class TokenExchangeError(GrantRejected):
    """IMS refused the authorization code of a sign-in."""


class TokenRefreshError(GrantRejected):
    """IMS refused the refresh token (revoked or expired): the user must sign in again."""


class IdentityProviderUnavailable(OAuthError):
    """IMS did not answer usefully (network error, 5xx, malformed body): worth retrying later."""


class TokenUnreadable(OAuthError):
    """A stored record no configured key decrypts (a key was dropped) or that does not parse."""


class LockUnavailable(OAuthError):
    """Another process held a user's refresh lock past the wait budget."""


class InstallationError(FrameioKitError):
    """Base exception for installation-related errors."""


class InstallationNotFoundError(InstallationError):
    """No installation found for the given workspace."""


class InstallFailed(InstallationError):
    """An install, update, rotation or uninstall stopped; `public_message` says what happened and
    what is left, for the install page."""

    def __init__(self, public_message: str) -> None:
        super().__init__(public_message)
        self.public_message = public_message


class FrameioApiError(InstallationError):
    """A Frame.io API call of an install step failed; `status` is its HTTP status (0: unreachable).
    The message names the step and status only, never a token or a secret."""

    def __init__(self, step: str, status: int) -> None:
        self.step = step
        self.status = status
        super().__init__(f"{step} failed ({'unreachable' if status == 0 else f'HTTP {status}'})")


class DevError(FrameioKitError):
    """Dev mode cannot start (no redis-server, port taken...)."""


class RedisServerUnavailable(FrameioKitError, RuntimeError):
    """No `redis-server` binary on PATH, or it did not start (`frameio_kit.testing`, dev mode)."""


class HandlerFailed(FrameioKitError):
    """Stands in for a handler's exception in Celery's retry (events, Flower): scrubbed text only."""


class RateLimited(FrameioKitError):
    """A Frame.io call not sent, or not accepted: its budget (account, user, endpoint) had no room within
    FRAMEIO_KIT_RATE_LIMIT_MAX_WAIT, or Frame.io answered 429. Nothing was done; `retry_after` seconds
    from now the budget has room again. Raised out of a worker handler, the job is deferred, not
    retried (docs/limits.md); out of an action handler, the user gets a "Frame.io is busy" Message."""

    def __init__(self, retry_after: float, *, endpoint: str = "", answered_429: bool = False) -> None:
        self.retry_after = max(0.0, float(retry_after))
        self.endpoint = endpoint
        self.answered_429 = answered_429
        what = "answered 429" if answered_429 else "no rate budget"
        super().__init__(f"Frame.io {what} for {endpoint or 'a call'}: retry in {self.retry_after:.1f} s")


class HandlerTimeout(FrameioKitError):
    """A worker handler ran longer than its `timeout=` (or FRAMEIO_KIT_HANDLER_TIMEOUT) and was cancelled;
    the attempt fails and is retried by the handler's policy, dead-lettered with reason `timeout` at the end."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"handler ran past its {seconds:g} s time limit and was cancelled")


class ReplayRefused(FrameioKitError):
    """A dead letter that is not queued again; the message says why (one line, for the operator)."""


class PermanentError(FrameioKitError):
    """Raise from a webhook handler to say "retrying will not help": the event goes straight to
    the dead-letter store instead of being retried."""
