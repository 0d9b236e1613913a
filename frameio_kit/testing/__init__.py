"""Test tools for integration authors, in the spirit of Starlette's TestClient and httpx's MockTransport.

- Payloads: `webhook_payload`, `action_payload`, `WEBHOOK_TYPES`.
- Signing: `sign_request`, `post_signed` (to an ingress at a URL).
- In process, no worker: `run_webhook` (handler + middleware, as a worker runs it) and
  `IngressClient` (the real ingress over ASGI; `ActionSession` drives a multi-step action).
- Real processes: `RedisServer`, `Service`, `cli_command`, `celery_command`, `wait_until`, `free_port`.
- pytest: `frameio_kit.testing.pytest_plugin` (the `frameio_redis` fixture). This package itself
  needs no pytest, so unittest suites can use it as well.
"""

from __future__ import annotations

from frameio_kit.testing.in_process import ActionSession, IngressClient, run_webhook
from frameio_kit.testing.payloads import WEBHOOK_TYPES, action_payload, encode_body, fake_id, webhook_payload
from frameio_kit.testing.processes import Service, celery_command, cli_command, free_port, wait_until
from frameio_kit.testing.redis_server import RedisServer
from frameio_kit.testing.signing import post_signed, sign_request
from shared.errors import RedisServerUnavailable

__all__ = [
    "WEBHOOK_TYPES",
    "ActionSession",
    "IngressClient",
    "RedisServer",
    "RedisServerUnavailable",
    "Service",
    "action_payload",
    "celery_command",
    "cli_command",
    "encode_body",
    "fake_id",
    "free_port",
    "post_signed",
    "run_webhook",
    "sign_request",
    "wait_until",
    "webhook_payload",
]
