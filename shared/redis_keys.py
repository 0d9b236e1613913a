"""Every Redis key this package writes, built in one place under one prefix."""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "frameio-kit"


def dedup_key(idempotency_key: str) -> str:
    """Marks a webhook delivery accepted within the de-duplication window."""
    return f"{PREFIX}:dedup:{idempotency_key}"


def done_key(idempotency_key: str) -> str:
    """Marks a webhook event whose handler completed."""
    return f"{PREFIX}:done:{idempotency_key}"


def attempts_key(idempotency_key: str) -> str:
    """The failed-attempt history of a webhook event still being retried."""
    return f"{PREFIX}:attempts:{idempotency_key}"


def dead_letter_index_key() -> str:
    """Sorted set of dead-letter ids, scored by the time they were dead-lettered."""
    return f"{PREFIX}:dead-letters"


def dead_letter_key(dead_letter_id: str) -> str:
    """One dead-lettered event: the job, its last error and its attempt history (JSON)."""
    return f"{PREFIX}:dead-letter:{dead_letter_id}"


def action_history_key(interaction_id: str) -> str:
    """The form answers of one custom-action interaction, one JSON object per submitted step."""
    return f"{PREFIX}:action:{interaction_id}:history"


def action_context_key(interaction_id: str) -> str:
    """The context (user, resource, project...) of an interaction's first call, for submissions
    that omit it."""
    return f"{PREFIX}:action:{interaction_id}:context"


def action_answer_key(interaction_id: str, step: str) -> str:
    """The answer given to one step (body hash `step`) of an interaction, replayed on retries."""
    return f"{PREFIX}:action:{interaction_id}:answer:{step}"


def action_lock_key(interaction_id: str, step: str) -> str:
    """Held while one ingress runs a step's handler, so a concurrent retry waits instead."""
    return f"{PREFIX}:action:{interaction_id}:lock:{step}"


def action_owner_key(interaction_id: str) -> str:
    """Who an interaction belongs to (account, action, user of its first step): other steps are refused."""
    return f"{PREFIX}:action:{interaction_id}:owner"


def action_size_key(interaction_id: str) -> str:
    """Hash of the steps an interaction ran and the bytes it keeps, checked against the limits."""
    return f"{PREFIX}:action:{interaction_id}:size"


def action_account_key(account_id: str) -> str:
    """Sorted set of one account's live interactions, scored by expiry: its quota."""
    return f"{PREFIX}:action-account:{_part(account_id)}"


def _part(value: str) -> str:
    # Percent-encoded, so an id holding ':' cannot make (account, user) pairs collide.
    return quote(value, safe="")


def user_token_key(account_id: str, user_id: str) -> str:
    """One user's encrypted token record (access + refresh pair) for the account (tenant) it was
    issued for, expiring with the refresh token."""
    return f"{PREFIX}:oauth:token:{_part(account_id)}:{_part(user_id)}"


def user_token_accounts_key(user_id: str) -> str:
    """The accounts a user holds token records in (sealed), so `delete_token(user_id=...)` outside a
    handler can sign them out of every account without scanning keys (stores other than Redis cannot)."""
    return f"{PREFIX}:oauth:token-accounts:{_part(user_id)}"


def user_token_accounts_lock_key(user_id: str) -> str:
    """Held while a new account is added to the user's index, so two sign-ins do not lose one."""
    return f"{PREFIX}:oauth:token-accounts-lock:{_part(user_id)}"


def user_token_lock_key(account_id: str, user_id: str) -> str:
    """Held by the one process refreshing a record; the others wait, then read the new pair."""
    return f"{PREFIX}:oauth:refresh-lock:{_part(account_id)}:{_part(user_id)}"


def key_canary_key() -> str:
    """A small record sealed with the encryption key: a process whose keys cannot open it refuses to start."""
    return f"{PREFIX}:oauth:key-canary"


def oauth_state_key(state_digest: str) -> str:
    """A pending sign-in (encrypted PKCE verifier and bound tenant and user), single-use; keyed by the state's hash."""
    return f"{PREFIX}:oauth:state:{state_digest}"


def oauth_link_key(link_digest: str) -> str:
    """The one pending sign-in a login link started (encrypted), so using the link again resumes it."""
    return f"{PREFIX}:oauth:link:{link_digest}"


def oauth_login_rate_key(account_id: str, user_id: str, window: int) -> str:
    """Counts the sign-ins one user of one account started in one rate-limit window."""
    return f"{PREFIX}:oauth:login-rate:{_part(account_id)}:{_part(user_id)}:{window}"


def oauth_pending_action_key(account_id: str, user_id: str, interaction_id: str) -> str:
    """The action event that asked a user to sign in, resumed by `on_auth_complete`: one per account,
    user and interaction, so nobody else's step can replace it."""
    return f"{PREFIX}:oauth:pending:{_part(account_id)}:{_part(user_id)}:{_part(interaction_id)}"


def ledger_key() -> str:
    """Hash of every webhook message accepted but not yet completed: idempotency key -> the
    Celery message, so one lost between the broker and a worker can be queued again."""
    return f"{PREFIX}:ledger"


def ledger_due_key() -> str:
    """Sorted set over the ledger, scored by when an entry counts as stranded if nothing touched it."""
    return f"{PREFIX}:ledger:due"


def ledger_sweep_lock_key() -> str:
    """Held by the one worker sweeping the ledger at a time."""
    return f"{PREFIX}:ledger:sweep-lock"


def installation_key(account_id: str, workspace_id: str) -> str:
    """One workspace's install record (encrypted): the webhook and actions created there, their
    signing secrets and the install field values."""
    return f"{PREFIX}:install:record:{_part(account_id)}:{_part(workspace_id)}"


def installation_intent_key(account_id: str, workspace_id: str) -> str:
    """An install, update or uninstall under way (encrypted): written before the first Frame.io
    call, so a half-done operation is found and finished or undone."""
    return f"{PREFIX}:install:intent:{_part(account_id)}:{_part(workspace_id)}"


def installation_lock_key(account_id: str, workspace_id: str) -> str:
    """Held while one process installs, updates or uninstalls in one workspace."""
    return f"{PREFIX}:install:lock:{_part(account_id)}:{_part(workspace_id)}"


def installation_action_index_key(action_id: str) -> str:
    """Which workspace a custom action id was installed in (action submissions may omit the workspace)."""
    return f"{PREFIX}:install:action:{_part(action_id)}"


def installation_changes_channel() -> str:
    """Pub/sub channel announcing a changed install record, so every process drops its cached copy."""
    return f"{PREFIX}:install:changed"


def install_session_key(session_digest: str) -> str:
    """One admin's install-page session (encrypted: their Frame.io token, the CSRF token), keyed by the id's hash."""
    return f"{PREFIX}:install:session:{session_digest}"


def install_state_key(state_digest: str) -> str:
    """A completed install-page sign-in's state: a marker written only after Adobe accepted the code, so
    a replayed callback is refused; keyed by the state's hash. Pending sign-ins store nothing."""
    return f"{PREFIX}:install:state:{state_digest}"


# -- the event history and paused handlers (shared/events/): on the queue's Redis, beside the scripts that
# write them. record.lua builds `event:` and `event-envelope:` keys from EVENT_KEY_PREFIX to trim by count.

EVENT_KEY_PREFIX = f"{PREFIX}:event"


def event_key(event_id: str) -> str:
    """One acknowledged webhook or action job in the history (hash: ids, status, attempts; never a body)."""
    return f"{EVENT_KEY_PREFIX}:{event_id}"


def event_envelope_key(event_id: str) -> str:
    """The signed job of one recorded event, kept for replay (action jobs only encrypted)."""
    return f"{EVENT_KEY_PREFIX}-envelope:{event_id}"


def event_index_key() -> str:
    """Sorted set of recorded event ids, scored by when the ingress acknowledged them."""
    return f"{EVENT_KEY_PREFIX}s"


def paused_handlers_key() -> str:
    """Hash of paused handlers: handler key -> who paused it, when and why (JSON)."""
    return f"{PREFIX}:handlers:paused"


def handler_failures_key(handler: str) -> str:
    """Consecutive failed attempts of one handler (the breaker's count), reset by a success."""
    return f"{PREFIX}:handlers:failures:{_part(handler)}"


def held_jobs_key(handler: str) -> str:
    """The jobs of a paused handler, set aside (list of signed jobs), queued again when it resumes."""
    return f"{PREFIX}:handlers:held:{_part(handler)}"


def handler_probe_key(handler: str) -> str:
    """Held while one probe job of a paused handler runs, and until the next probe is due."""
    return f"{PREFIX}:handlers:probe:{_part(handler)}"


# -- per-key ordering (shared/jobs/ordering.py): on the queue's Redis, beside the queue and the ledger.


def order_state_key(order_key: str) -> str:
    """Hash of one ordering key (hashed, shared/jobs/routing.py): `last` sequence given, `next` allowed to
    run, and idempotency key -> sequence of each message still to finish."""
    return f"{PREFIX}:order:{order_key}"


def order_parked_key(order_key: str) -> str:
    """Hash of one ordering key's parked messages: sequence -> queue, idempotency key and message."""
    return f"{PREFIX}:order:{order_key}:parked"


def order_waiting_key() -> str:
    """Sorted set of ordering keys with parked messages, scored by when their head counts as lost."""
    return f"{PREFIX}:order-waiting"


def order_sweep_lock_key() -> str:
    """Held by the one worker looking for ordering keys whose head was lost."""
    return f"{PREFIX}:order-waiting:sweep-lock"


# -- Frame.io's rate limits (shared/ratelimit/): in REDIS_URL, shared by every ingress and worker.


def rate_limit_key(account_id: str, identity: str, endpoint: str) -> str:
    """Hash of one rate budget (account, token identity, endpoint template): the `limit`/`window` Frame.io
    answered for it and the limiter's bookkeeping. Holds no token and no resource id."""
    return f"{PREFIX}:ratelimit:{_part(account_id)}:{identity}:{endpoint}"


def rate_limit_log_key(account_id: str, identity: str, endpoint: str) -> str:
    """Sorted set of one rate budget's calls: the times they were (or are reserved to be) sent."""
    return f"{rate_limit_key(account_id, identity, endpoint)}:log"


def rate_limit_endpoint_key(endpoint: str) -> str:
    """Hash of the `limit`/`window` last learned for an endpoint template, whoever called it: a new
    account or token starts from it instead of the documented default."""
    return f"{PREFIX}:ratelimit-endpoint:{endpoint}"
