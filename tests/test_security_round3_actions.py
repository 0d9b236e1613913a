"""Security round three (issue 21), custom actions, as attacks over real HTTP on a real ingress:
another tenant's steps on an interaction (5), form answers in the ingress log (7), and the size of
the action state (11). Tenants sign with their own secrets (tests/apps/tenant_actions.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.apps.tenant_actions import SECRETS, TENANT_A, TENANT_B, TENANT_C
from tests.apps.tenant_secrets import ACTION_SECRETS
from tests.helpers import action_payload, post_signed
from tests.oauth_support import login_link, oauth_env, sign_in

pytestmark = pytest.mark.e2e

APP = "tests.apps.tenant_actions:app"
OAUTH_TENANTS_APP = "tests.apps.oauth_tenants:app"
STATES = {"memory": {}, "redis": {"FRAMEIO_KIT_ACTION_STATE": "redis"}}
REFUSED = "Action refused"


def step(
    url: str,
    account: str,
    interaction: str,
    data: dict[str, Any] | None = None,
    *,
    user: str = "user-1",
    action: str = "tests.notes",
    context: bool = True,
) -> dict[str, Any]:
    """One step of `action`, signed with `account`'s own secret; `context=False` sends a submission
    as Frame.io's example does, with only the account (which the resolver needs) besides the ids."""
    if context:
        payload = action_payload(interaction, data, event_type=action, account_id=account, user={"id": user})
    else:
        payload = {"type": action, "interaction_id": interaction, "action_id": "act-1", "account_id": account}
        payload["data"] = data
    response = post_signed(url, payload, SECRETS[account])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def logs(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))


def seen_by_handler(records: Any, interaction: str) -> list[tuple[str, Any, list[Any]]]:
    return [(r["account"], r["data"], r["history"]) for r in records("notes") if r["interaction"] == interaction]


# -- 5. one tenant's steps on another tenant's interaction ----------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_another_tenant_or_user_cannot_read_or_rewrite_an_interaction(
    state, start_ingress, redis_client, records, tmp_path
):
    url = start_ingress(APP, extra_env=STATES[state])
    victim = f"int-a-{uuid.uuid4().hex[:8]}"
    assert step(url, TENANT_A, victim)["title"] == "Note"
    assert step(url, TENANT_A, victim, {"note": "alice-private-note"}, context=False)["title"] == "Note"

    # Tenant B signs, with its own valid secret, steps naming A's interaction: with and without context.
    for attempt in (
        step(url, TENANT_B, victim, {"note": "injected-by-b"}, context=False),
        step(url, TENANT_B, victim, {"note": "injected-by-b"}, user="user-b"),
        step(url, TENANT_B, victim),
        # Another user of A's own account, and another action of A's, are refused too.
        step(url, TENANT_A, victim, {"note": "injected-by-user-2"}, user="user-2"),
        step(url, TENANT_A, victim, {"pin": "1234"}, action="tests.pin"),
    ):
        assert attempt["title"] == REFUSED, attempt
        assert "alice-private-note" not in str(attempt)

    done = step(url, TENANT_A, victim, {"done": "yes"}, context=False)

    assert done == {"title": "Saved", "description": "done=yes,note=alice-private-note"}
    assert seen_by_handler(records, victim) == [
        (TENANT_A, None, []),
        (TENANT_A, {"note": "alice-private-note"}, []),
        (TENANT_A, {"done": "yes"}, [{"note": "alice-private-note"}]),
    ]
    text = logs(tmp_path)
    assert text.count(f"tests.notes interaction={victim}: step refused (403)") == 4
    assert "Traceback" not in text and " ERROR " not in text


def test_another_tenant_cannot_replace_a_pending_sign_in_action(ims, start_ingress, redis_client, records):
    # Two processes with memory state: neither knows the other's interactions, as after an expiry, so
    # only the sign-in's own binding protects the pending action.
    env = oauth_env(ims)
    first, second = start_ingress(OAUTH_TENANTS_APP, extra_env=env), start_ingress(OAUTH_TENANTS_APP, extra_env=env)
    victim = f"int-a-{uuid.uuid4().hex[:8]}"

    def run(url: str, account: str) -> dict[str, Any]:
        payload = action_payload(victim, account_id=account, user={"id": "user-1"})
        response = post_signed(url, payload, ACTION_SECRETS[account])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    form = run(first, TENANT_A)
    login_link(run(second, TENANT_B))  # B's own step with A's interaction id: asked to sign in, as B

    callback, _ = sign_in(first, form)  # A's user completes A's link

    assert callback.status_code == 200
    assert [(r["interaction"], r["user"]) for r in records("resumed")] == [(victim, "user-1")]


# -- 7. form answers in the ingress log ---------------------------------------------------------


def test_a_typed_secret_quoted_by_a_failing_handler_never_reaches_the_ingress_log(
    start_ingress, redis_client, tmp_path
):
    url = start_ingress(APP)
    interaction = f"int-pin-{uuid.uuid4().hex[:8]}"
    assert step(url, TENANT_A, interaction, action="tests.pin")["title"] == "PIN"

    answer = step(url, TENANT_A, interaction, {"pin": "hunter2-typed-secret"}, action="tests.pin")

    assert answer["title"] == "Something went wrong"
    text = logs(tmp_path)
    assert f"tests.pin interaction={interaction}: action handler failed" in text
    assert "ValueError: invalid literal for int() with base 10: '[redacted]'" in text
    assert "hunter2-typed-secret" not in text


# -- 11. the size of the action state -------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_an_interaction_is_refused_past_its_steps_and_bytes(state, start_ingress, redis_client, records, tmp_path):
    limits = {"FRAMEIO_KIT_ACTION_STATE_MAX_STEPS": "4", "FRAMEIO_KIT_ACTION_STATE_MAX_BYTES": "16384"}
    url = start_ingress(APP, extra_env={**STATES[state], **limits})
    chatty, bulky = f"int-steps-{uuid.uuid4().hex[:8]}", f"int-bytes-{uuid.uuid4().hex[:8]}"

    answers = [step(url, TENANT_A, chatty, None if i == 0 else {"note": f"n{i}"}) for i in range(6)]
    assert [a["title"] for a in answers] == ["Note", "Note", "Note", "Note", REFUSED, REFUSED]
    assert "too many steps" in answers[4]["description"]
    assert step(url, TENANT_A, chatty, {"note": "n3"})["title"] == "Note"  # a retry is still answered

    big = "x" * 6000
    sizes = [step(url, TENANT_A, bulky, None if i == 0 else {"note": f"{i}{big}"}) for i in range(4)]
    assert [a["title"] for a in sizes] == ["Note", "Note", "Note", REFUSED]
    assert "too much data" in sizes[3]["description"]

    assert len(seen_by_handler(records, chatty)) == 4 and len(seen_by_handler(records, bulky)) == 3
    assert "step refused (413)" in logs(tmp_path)


@pytest.mark.parametrize("state", STATES)
def test_one_accounts_flood_is_held_to_its_quota_and_evicts_no_other_accounts_interaction(
    state, start_ingress, redis_client, records, tmp_path
):
    limits = {"FRAMEIO_KIT_ACTION_STATE_MAX": "25", "FRAMEIO_KIT_ACTION_STATE_ACCOUNT_QUOTA": "15"}
    url = start_ingress(APP, extra_env={**STATES[state], **limits})
    victim = f"int-a-{uuid.uuid4().hex[:8]}"
    step(url, TENANT_A, victim)
    step(url, TENANT_A, victim, {"note": "kept"})

    flood = {
        account: [step(url, account, f"int-{account}-{i}")["title"] for i in range(40)]
        for account in (TENANT_B, TENANT_C)
    }

    # B gets its quota, then refusals. In memory (25 in all) C's flood fills the store, which then drops
    # the oldest interactions of the largest account (B's, then C's own), never A's.
    assert flood[TENANT_B] == ["Note"] * 15 + [REFUSED] * 25
    assert flood[TENANT_C][:15] == ["Note"] * 15
    if state == "redis":  # no bound in all: the quota alone holds C
        assert flood[TENANT_C][15:] == [REFUSED] * 25
    assert "step refused (429)" in logs(tmp_path)
    assert step(url, TENANT_A, victim, {"done": "yes"})["description"] == "done=yes,note=kept"
    assert seen_by_handler(records, victim)[-1] == (TENANT_A, {"done": "yes"}, [{"note": "kept"}])
