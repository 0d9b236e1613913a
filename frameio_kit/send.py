"""`frameio-kit send`: sign and post realistic Frame.io events (webhooks or action steps) to an ingress."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import httpx

from frameio_kit.dev_secrets import is_loopback_host, read_session, session_path
from frameio_kit.testing.payloads import WEBHOOK_TYPES, action_payload, webhook_payload
from frameio_kit.testing.signing import post_signed
from shared.settings import get_settings

_USER_AGENT = {"user-agent": "Frame.io V4 API (frameio-kit send)"}
_UNHANDLED_HEADER = "x-frameio-kit-unhandled"  # ingress/routes.py UNHANDLED_HEADER: a 200 that ran nothing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "event_type",
        metavar="EVENT_TYPE",
        help="a webhook type (file.ready, comment.created, ...) or, with --action, an action's event",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000/", help="the ingress (default http://127.0.0.1:8000/)")
    parser.add_argument(
        "--secret", default=None, help="signing secret (default: WEBHOOK_SECRET, or CUSTOM_ACTION_SECRET with --action)"
    )
    parser.add_argument("--resource-id", default=None, help="the resource's id (default: a random UUID)")
    parser.add_argument(
        "--data",
        default=None,
        metavar="JSON",
        help="webhooks: extra top-level fields merged into the body; actions: the submitted form",
    )
    parser.add_argument("--action", action="store_true", help="send a custom-action step instead of a webhook")
    parser.add_argument(
        "--interaction-id",
        default=None,
        help="action interaction id; reuse it to submit the next step (implies --action)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")


def run(args: argparse.Namespace) -> int:
    """Build, sign and post one event; print the answer; 0 on a 2xx, 1 otherwise, 2 on bad input."""
    is_action = bool(args.action or args.interaction_id)
    try:
        data = _parse_data(args.data)
    except ValueError as exc:
        print(f"frameio-kit send: {exc}", file=sys.stderr)
        return 2
    secret = args.secret or _secret_from_settings(is_action) or _secret_from_dev_session(args.url, is_action)
    if not secret:
        which = "CUSTOM_ACTION_SECRET" if is_action else "WEBHOOK_SECRET"
        print(
            f"frameio-kit send: no secret: pass --secret or set {which} (a `frameio-kit dev` session on this "
            f"machine provides one for its own loopback URL, through {session_path(get_settings())})",
            file=sys.stderr,
        )
        return 2
    resource_id = args.resource_id or str(uuid.uuid4())
    if is_action:
        payload = action_payload(
            args.event_type, resource_id=resource_id, interaction_id=args.interaction_id, data=data
        )
    else:
        if args.event_type not in WEBHOOK_TYPES:
            print(
                f"frameio-kit send: warning: {args.event_type!r} is not one of Frame.io's webhook types "
                "(pass --action for a custom action)",
                file=sys.stderr,
            )
        payload = webhook_payload(args.event_type, resource_id=resource_id)
        payload.update(data or {})
    try:
        response = post_signed(args.url, payload, secret, headers=_USER_AGENT, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"frameio-kit send: could not reach {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _print_answer(response, payload)
    if response.headers.get(_UNHANDLED_HEADER):
        kind = "action" if is_action else "webhook"
        print(
            f"frameio-kit send: the ingress has no handler for {kind} {args.event_type!r}: "
            "acknowledged with 200, nothing ran",
            file=sys.stderr,
        )
        return 1
    return 0 if response.is_success else 1


def _parse_data(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--data must be a JSON object")
    return value


def _secret_from_settings(is_action: bool) -> str | None:
    settings = get_settings()
    secret = settings.custom_action_secret if is_action else settings.webhook_secret
    return secret.get_secret_value() if secret is not None else None


def _secret_from_dev_session(url: str, is_action: bool) -> str | None:
    """The running dev session's generated secret, only for that session's own ingress on a
    loopback address: a secret must never sign a request bound for another host."""
    session = read_session(session_path(get_settings()))
    target = httpx.URL(url)
    if session is None or not is_loopback_host(target.host) or (target.port or 80) != session.port:
        return None
    return session.custom_action_secret if is_action else session.webhook_secret


def _print_answer(response: httpx.Response, payload: dict[str, Any]) -> None:
    ids = f"resource={payload['resource']['id']}"
    if "interaction_id" in payload:
        ids += f" interaction={payload['interaction_id']}"
    print(f"{payload['type']} {ids} -> {response.status_code} {response.reason_phrase}")
    if not response.content:
        return
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
