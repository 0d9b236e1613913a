"""The exception tree.

FrameioKitError
├── RequestRejected          a request we refuse; carries the 4xx status and a public message
│   ├── PayloadTooLarge      413
│   ├── RequestTimedOut      408 (body not received within FRAMEIO_KIT_BODY_TIMEOUT)
│   ├── InvalidPayload       400 (not JSON, not an object) / 422 (schema)
│   └── SignatureInvalid     401 (missing, malformed, stale or wrong signature)
├── BrokerUnavailable        the queue did not take the message in time (503, Frame.io retries)
├── AppLoadError             FRAMEIO_APP missing or not importable
└── PermanentError           raised by a handler: do not retry, dead-letter at once
"""

from __future__ import annotations


class FrameioKitError(Exception):
    """Base of every error this package raises on purpose."""


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


class SignatureInvalid(RequestRejected):
    status_code = 401

    def __init__(self, public_message: str = "invalid signature") -> None:
        super().__init__(public_message)


class BrokerUnavailable(FrameioKitError):
    """The broker did not confirm the message within the enqueue time budget."""


class AppLoadError(FrameioKitError):
    """The integration named by FRAMEIO_APP / the APP argument cannot be loaded."""


class PermanentError(FrameioKitError):
    """Raise from a webhook handler to say "retrying will not help": the event goes straight to
    the dead-letter store instead of being retried."""
