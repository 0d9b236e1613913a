"""End to end: custom actions answered by a real ingress process in one HTTP exchange each."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers import (
    ACTION_SECRET,
    WEBHOOK_SECRET,
    action_payload,
    post_signed,
    queue_length,
    sign_request,
    wait_until,
    webhook_payload,
)

pytestmark = pytest.mark.e2e


@pytest.mark.smoke
def test_action_returns_form_then_message_for_the_submission(start_ingress, redis_client, records):
    url = start_ingress()
    first = post_signed(url, _action("int-1"), ACTION_SECRET)
    assert first.status_code == 200
    form = first.json()
    assert form["title"] == "Transcribe"
    assert [f["name"] for f in form["fields"]] == ["language", "note"]
    assert form["fields"][0]["options"] == [{"name": "English", "value": "en"}]

    second = post_signed(url, _action("int-1", data={"language": "en", "note": "hi"}), ACTION_SECRET)
    assert second.status_code == 200
    assert second.json() == {"title": "Transcribing", "description": "Language: en"}

    assert [r["interaction"] for r in records("action")] == ["int-1", "int-1"]
    assert queue_length(redis_client) == 0


def test_rejected_requests_never_reach_a_handler(start_ingress, start_worker, redis_client, records):
    url = start_ingress()
    start_worker()
    body, headers = sign_request(webhook_payload("tampered"), WEBHOOK_SECRET)
    tampered = httpx.post(url + "/", content=body.replace(b"tampered", b"tampereD"), headers=headers)
    stale = post_signed(url, webhook_payload("stale"), WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    wrong = post_signed(url, webhook_payload("wrong"), "not-the-secret")
    action = post_signed(url, _action("int-x"), "not-the-secret")
    assert [r.status_code for r in (tampered, stale, wrong, action)] == [401, 401, 401, 401]

    assert post_signed(url, webhook_payload("valid-after"), WEBHOOK_SECRET).status_code == 202
    wait_until(lambda: records("done"), timeout=15, what="the valid webhook")
    assert [r["resource"] for r in records("started")] == ["valid-after"]
    assert records("action") == []


def _action(interaction: str, data: dict[str, str] | None = None) -> dict[str, object]:
    return action_payload(interaction, data)
