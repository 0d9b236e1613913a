"""Frame.io's per-endpoint rate limits, used until a response's `x-ratelimit-*` headers teach the real ones.

Source: the "Rate Limits: N calls per T per account_user" line of each endpoint's description in the
official `frameio` SDK 4.0.0 (generated from https://api.frame.io/v4/openapi.json), read with a script
over `frameio/*/raw_client.py`. Frame.io's guides say only that limits run "from 10 requests a minute
to 100 a second" per endpoint, as a leaky bucket (docs/limits.md). These numbers are therefore a
snapshot, not a contract: the limiter trusts the headers of the first answer over this table.

An endpoint not in the table (a newer API, the experimental one) gets `UNKNOWN_ENDPOINT`, 100 calls a
second: the highest documented limit, an assumption chosen so an unknown endpoint is never slowed down
before Frame.io has said what its limit is.
"""

from __future__ import annotations

Limit = tuple[int, int]
"""(calls, window in milliseconds), as `x-ratelimit-limit` and `x-ratelimit-window` give them."""

UNKNOWN_ENDPOINT: Limit = (100, 1000)

_S, _MIN = 1000, 60_000

DEFAULT_LIMITS: dict[tuple[str, str], Limit] = {
    ("GET", "/v4/accounts"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/actions/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/actions/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/actions/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/audit_logs"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/collections/{id}"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/comments/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/comments/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/comments/{id}"): (10, _MIN),
    ("POST", "/v4/accounts/{id}/comments/{id}/attachments"): (60, _MIN),
    ("DELETE", "/v4/accounts/{id}/comments/{id}/attachments/{id}"): (60, _MIN),
    ("POST", "/v4/accounts/{id}/files/copy"): (60, _MIN),
    ("PATCH", "/v4/accounts/{id}/files/move"): (60, _MIN),
    ("DELETE", "/v4/accounts/{id}/files/{id}"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/files/{id}"): (10, _S),
    ("PATCH", "/v4/accounts/{id}/files/{id}"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/files/{id}/comments"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/files/{id}/comments"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/files/{id}/copy"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/files/{id}/metadata"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/files/{id}/move"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/files/{id}/status"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/copy"): (10, _MIN),
    ("PATCH", "/v4/accounts/{id}/folders/move"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/folders/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/folders/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/folders/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/folders/{id}/children"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/folders/{id}/copy"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/folders/{id}/files"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/files"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/files/import"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/files/local_upload"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/files/remote_upload"): (5, _S),
    ("GET", "/v4/accounts/{id}/folders/{id}/folders"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/folders"): (3, _S),
    ("PATCH", "/v4/accounts/{id}/folders/{id}/move"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/folders/{id}/users"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/folders/{id}/users/{id}"): (60, _MIN),
    ("PATCH", "/v4/accounts/{id}/folders/{id}/users/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/folders/{id}/version_stacks"): (5, _S),
    ("POST", "/v4/accounts/{id}/folders/{id}/version_stacks"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/groups"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/groups"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/groups/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/groups/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/invited_projects"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/metadata/field_definitions"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/metadata/field_definitions"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/metadata/field_definitions/{id}"): (60, _MIN),
    ("PATCH", "/v4/accounts/{id}/metadata/field_definitions/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/projects"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/projects/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/projects/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/projects/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/projects/{id}/collections"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/projects/{id}/metadata/values"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/projects/{id}/recently_deleted"): (5, _S),
    ("GET", "/v4/accounts/{id}/projects/{id}/shares"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/projects/{id}/shares"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/projects/{id}/users"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/projects/{id}/users/{id}"): (60, _MIN),
    ("PATCH", "/v4/accounts/{id}/projects/{id}/users/{id}"): (10, _MIN),
    ("POST", "/v4/accounts/{id}/search"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/shares/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/shares/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/shares/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/shares/{id}/activities"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/shares/{id}/assets"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/shares/{id}/assets"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/shares/{id}/assets/{id}"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/shares/{id}/reviewers"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/shares/{id}/reviewers"): (10, _MIN),
    ("POST", "/v4/accounts/{id}/shares/{id}/reviewers"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/users"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/users/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/version_stacks/{id}"): (100, _MIN),
    ("GET", "/v4/accounts/{id}/version_stacks/{id}/children"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/version_stacks/{id}/copy"): (10, _MIN),
    ("PATCH", "/v4/accounts/{id}/version_stacks/{id}/move"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/webhooks/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/webhooks/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/webhooks/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/workspaces"): (10, _MIN),
    ("DELETE", "/v4/accounts/{id}/workspaces/{id}"): (60, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces/{id}"): (100, _MIN),
    ("PATCH", "/v4/accounts/{id}/workspaces/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces/{id}/actions"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/workspaces/{id}/actions"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces/{id}/projects"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/workspaces/{id}/projects"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces/{id}/users"): (100, _MIN),
    ("DELETE", "/v4/accounts/{id}/workspaces/{id}/users/{id}"): (60, _MIN),
    ("PATCH", "/v4/accounts/{id}/workspaces/{id}/users/{id}"): (10, _MIN),
    ("GET", "/v4/accounts/{id}/workspaces/{id}/webhooks"): (100, _MIN),
    ("POST", "/v4/accounts/{id}/workspaces/{id}/webhooks"): (10, _MIN),
    ("GET", "/v4/me"): (100, _MIN),
}
"""(method, path template with every id as `{id}`) -> its documented limit."""


def default_limit(method: str, template: str) -> Limit:
    """The documented limit of `method template`, or `UNKNOWN_ENDPOINT`."""
    return DEFAULT_LIMITS.get((method, template), UNKNOWN_ENDPOINT)
