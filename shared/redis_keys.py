"""Every Redis key this package writes, built in one place under one prefix."""

from __future__ import annotations

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


def user_token_key(user_id: str) -> str:
    """One user's encrypted token record (access + refresh pair), expiring with the refresh token."""
    return f"{PREFIX}:oauth:token:{user_id}"


def user_token_lock_key(user_id: str) -> str:
    """Held by the one process refreshing a user's token; the others wait, then read the new pair."""
    return f"{PREFIX}:oauth:refresh-lock:{user_id}"


def oauth_state_key(state_digest: str) -> str:
    """A pending sign-in (encrypted PKCE verifier and bound user), single-use; keyed by the state's hash."""
    return f"{PREFIX}:oauth:state:{state_digest}"


def oauth_pending_action_key(interaction_id: str) -> str:
    """The action event that asked a user to sign in, resumed by `on_auth_complete`."""
    return f"{PREFIX}:oauth:pending:{interaction_id}"


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
