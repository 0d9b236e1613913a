"""`frameio-kit send`: sign and post realistic Frame.io events (webhooks or action steps) to an ingress."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import httpx

from shared.core.signature import sign_headers
from shared.settings import get_settings

# Frame.io's 30 webhook event types (SDK 4.0.0), grouped as the platform documents them.
WEBHOOK_TYPES: tuple[str, ...] = (
    "file.created",
    "file.ready",
    "file.updated",
    "file.deleted",
    "file.upload.completed",
    "file.versioned",
    "file.copied",
    "folder.created",
    "folder.updated",
    "folder.deleted",
    "folder.copied",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "comment.completed",
    "comment.uncompleted",
    "project.created",
    "project.updated",
    "project.deleted",
    "metadata.value.updated",
    "customfield.created",
    "customfield.updated",
    "customfield.deleted",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "share.created",
    "share.updated",
    "share.deleted",
    "share.viewed",
)

# The resource a webhook of each group is about; metadata values belong to files.
_RESOURCE_TYPES = {
    "file": "file",
    "folder": "folder",
    "comment": "comment",
    "project": "project",
    "metadata": "file",
    "customfield": "customfield",
    "collection": "collection",
    "share": "share",
}


# Well-known secrets `frameio-kit dev` uses on a loopback address when none are set, so that a
# newcomer's `frameio-kit send file.ready` works without copying a secret between terminals.
DEV_WEBHOOK_SECRET = "frameio-kit-dev-webhook-secret"  # noqa: S105 - public by design, dev mode only
DEV_ACTION_SECRET = "frameio-kit-dev-action-secret"  # noqa: S105 - public by design, dev mode only


def webhook_payload(event_type: str, resource_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A webhook body shaped like Frame.io's documented `file.ready` delivery, for any event type."""
    resource_type = _RESOURCE_TYPES.get(event_type.split(".", 1)[0], "file")
    project_id = resource_id if resource_type == "project" else _fake_id("project")
    payload: dict[str, Any] = {
        "account": {"id": _fake_id("account")},
        "project": {"id": project_id},
        "resource": {"id": resource_id, "type": resource_type},
        "type": event_type,
        "user": {"id": _fake_id("user")},
        "workspace": {"id": _fake_id("workspace")},
    }
    payload.update(extra or {})
    return payload


def action_payload(
    event_type: str, resource_id: str, interaction_id: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A custom-action body: the first step without `data`, a form submission with it."""
    payload: dict[str, Any] = {
        "account_id": _fake_id("account"),
        "action_id": _fake_id("action"),
        "interaction_id": interaction_id,
        "project": {"id": _fake_id("project")},
        "resource": {"id": resource_id, "type": "file"},
        "type": event_type,
        "user": {"id": _fake_id("user")},
        "workspace": {"id": _fake_id("workspace")},
    }
    if data is not None:
        payload["data"] = data
    return payload


def post_event(url: str, secret: str, payload: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
    """POST `payload` to `url` signed with `secret`, byte for byte as Frame.io would."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = {
        "content-type": "application/json",
        "user-agent": "Frame.io V4 API (frameio-kit send)",
        **sign_headers(body, secret),
    }
    return httpx.post(url, content=body, headers=headers, timeout=timeout)


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
    secret = args.secret or _secret_from_settings(is_action)
    if not secret and _is_loopback(args.url):
        secret = DEV_ACTION_SECRET if is_action else DEV_WEBHOOK_SECRET
        print("frameio-kit send: no secret given: signing with the dev-mode default", file=sys.stderr)
    if not secret:
        which = "CUSTOM_ACTION_SECRET" if is_action else "WEBHOOK_SECRET"
        print(f"frameio-kit send: no secret: pass --secret or set {which}", file=sys.stderr)
        return 2
    resource_id = args.resource_id or str(uuid.uuid4())
    if is_action:
        interaction_id = args.interaction_id or str(uuid.uuid4())
        payload = action_payload(args.event_type, resource_id, interaction_id, data)
    else:
        if args.event_type not in WEBHOOK_TYPES:
            print(
                f"frameio-kit send: warning: {args.event_type!r} is not one of Frame.io's webhook types "
                "(pass --action for a custom action)",
                file=sys.stderr,
            )
        payload = webhook_payload(args.event_type, resource_id, data)
    try:
        response = post_event(args.url, secret, payload, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"frameio-kit send: could not reach {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _print_answer(response, payload)
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


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in {"localhost", "::1"} or host.startswith("127.")


def _secret_from_settings(is_action: bool) -> str | None:
    settings = get_settings()
    secret = settings.custom_action_secret if is_action else settings.webhook_secret
    return secret.get_secret_value() if secret is not None else None


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


def _fake_id(kind: str) -> str:
    # Stable per kind, so events from one `send` session look like one account and workspace.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"frameio-kit-send:{kind}"))
