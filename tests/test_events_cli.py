"""`frameio-kit events list|show|replay` and `dead-letters replay`'s filters, run as a user runs them
(subprocesses) against real Redis, ingress and workers: filters return exactly the matching events, a
dry run prints exactly what would run and runs nothing, a replay runs exactly those once more (as new
attempts of the same events, past their completion markers), and `show` lists each attempt's error class."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import redis

from shared.events.history import EventHistory
from shared.events.model import EventRecord
from shared.jobs.dead_letters import DeadLetterStore
from shared.redis_keys import done_key
from tests.helpers import ROOT, WEBHOOK_SECRET, cli_command, free_port, post_signed, wait_until, webhook_payload
from tests.oauth_support import KEY_A

pytestmark = pytest.mark.e2e

HISTORY_APP = "tests.apps.history:app"
KEYS = {"FRAMEIO_KIT_ENCRYPTION_KEYS": KEY_A}  # the test app uses sign-in
TYPES = ("file.ready", "file.created", "comment.created")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )


def _history(client: redis.Redis) -> EventHistory:
    return EventHistory(client, max_events=1000, retention=3600)


def _settled(client: redis.Redis, count: int) -> list[EventRecord]:
    found = list(_history(client).newest())
    return found if len(found) == count and all(r.status in ("done", "dead") for r in found) else []


def _sixty() -> list[dict[str, Any]]:
    """60 events over 2 accounts and 3 types; about a third fail (dead-lettered: no retries)."""
    events = []
    for i in range(60):
        extra = {"test_fail": True} if i % 5 == 0 or i % 7 == 0 else {}
        account = "acct-a" if i % 2 == 0 else "acct-b"
        events.append(webhook_payload(f"r{i}", event_type=TYPES[i % 3], account={"id": account}, **extra))
    return events


def test_sixty_events_filtered_listed_dry_run_and_replayed_exactly(
    start_ingress, start_worker, redis_client, records, base_env
):
    env = {**base_env, **KEYS}
    url = start_ingress(HISTORY_APP, extra_env=KEYS)
    start_worker(HISTORY_APP, extra_env=KEYS)
    events = _sixty()
    for payload in events:
        assert post_signed(url, payload, WEBHOOK_SECRET).status_code == 202
    settled = wait_until(lambda: _settled(redis_client, 60), timeout=60, what="all 60 events to be done or dead")
    chosen = {
        p["resource"]["id"]
        for p in events
        if p["account"]["id"] == "acct-a" and p["type"].startswith("file.") and p.get("test_fail")
    }
    dead = {r.resource_id for r in settled if r.status == "dead"}
    assert chosen and dead > chosen and len(dead) == sum(1 for p in events if p.get("test_fail"))

    listed = _cli(env, "events", "list", "--account", "acct-a", "--type", "file.*", "--status", "dead", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert sorted(r["resource_id"] for r in found) == sorted(chosen)
    assert {(r["status"], r["account_id"]) for r in found} == {("dead", "acct-a")}
    assert all(r["attempts"][0]["error"] == "RuntimeError" for r in found)

    dry = _cli(env, "events", "replay", "--account", "acct-a", "--type", "file.*", "--status", "dead", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{len(chosen)} event(s) would be replayed" in dry.stdout
    would = [line for line in dry.stdout.splitlines() if line.startswith("would replay ")]
    assert len(would) == len(chosen)
    by_resource = {r.resource_id: r for r in settled}
    assert all(any(by_resource[c].short_id in line for line in would) for c in chosen)
    assert all(r.replays == 0 and r.status in ("done", "dead") for r in _history(redis_client).newest())
    assert redis_client.hlen("unacked") == 0 and len(records("run")) == 60  # nothing was sent

    redis_client.select(1)
    redis_client.set("test:heal", "1")  # the dependency is back: replayed events succeed
    redis_client.select(0)
    letters = DeadLetterStore(redis_client, max_entries=1000, retention=3600, completion_ttl=600)
    assert letters.count() == len(dead)
    replayed = _cli(env, "events", "replay", "--account", "acct-a", "--type", "file.*", "--status", "dead", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {len(chosen)} event(s)" in replayed.stdout

    def again() -> list[EventRecord]:
        found = [r for r in _history(redis_client).newest() if r.resource_id in chosen]
        return found if all(r.status == "done" and len(r.attempts) == 2 for r in found) else []

    for record in wait_until(again, timeout=60, what="the replayed events to be done"):
        assert record.replays == 1 and [a.status for a in record.attempts] == ["dead", "done"]
    assert letters.count() == len(dead) - len(chosen)  # their dead letters went with the replay
    runs: dict[str, int] = {}
    for run in records("run"):
        runs[run["resource"]] = runs.get(run["resource"], 0) + 1
    assert {r for r, n in runs.items() if n == 2} == chosen and set(runs.values()) <= {1, 2}  # once each
    rest = {r.resource_id: r for r in _history(redis_client).newest() if r.resource_id not in chosen}
    assert {r for r, rec in rest.items() if rec.status == "dead"} == dead - chosen  # the rest stay
    assert all(rec.replays == 0 and len(rec.attempts) == 1 for rec in rest.values())


def test_show_lists_each_attempt_of_a_retried_event_with_its_error_class(
    start_ingress, start_worker, redis_client, records, base_env
):
    url = start_ingress(HISTORY_APP, extra_env=KEYS)
    start_worker(HISTORY_APP, extra_env=KEYS)
    assert post_signed(url, webhook_payload("up-1", event_type="file.upload.completed"), WEBHOOK_SECRET).status_code
    (record,) = wait_until(
        lambda: [r for r in _history(redis_client).newest() if r.status == "done"], timeout=30, what="done"
    )

    shown = _cli(base_env, "events", "show", record.short_id)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.lstrip()[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3
    assert "try 1  retrying" in lines[0] and lines[0].endswith("UpstreamTimeout")
    assert "try 2  retrying" in lines[1] and lines[1].endswith("ConnectionError")
    assert "try 3  done" in lines[2]
    assert "status     done" in shown.stdout and "type       file.upload.completed" in shown.stdout
    assert "no answer for" not in shown.stdout  # the class, never the message

    as_json = json.loads(_cli(base_env, "events", "show", record.id, "--json").stdout)
    assert [(a["number"], a["status"], a["error"]) for a in as_json["attempts"]] == [
        (1, "retrying", "UpstreamTimeout"),
        (2, "retrying", "ConnectionError"),
        (3, "done", None),
    ]
    assert all(a["duration_ms"] is not None and a["started_at"] >= record.received_at for a in as_json["attempts"])


def test_replaying_a_done_event_runs_it_again_past_its_completion_marker(
    start_ingress, start_worker, redis_client, records, base_env
):
    url = start_ingress(HISTORY_APP, extra_env=KEYS)
    start_worker(HISTORY_APP, extra_env=KEYS)
    assert post_signed(url, webhook_payload("once-1"), WEBHOOK_SECRET).status_code == 202
    (record,) = wait_until(lambda: _settled(redis_client, 1), timeout=30, what="the event to be done")
    assert record.status == "done" and redis_client.exists(done_key(record.id))

    replayed = _cli(base_env, "events", "replay", record.short_id, "--yes")
    assert replayed.returncode == 0, replayed.stderr
    wait_until(lambda: len(records("done")) == 2, timeout=30, what="the handler to run a second time")
    again = wait_until(
        lambda: (r := _history(redis_client).get(record.id)) and len(r.attempts) == 2 and r.status == "done" and r,
        timeout=30,
        what="the second attempt to be recorded",
    )
    assert again.id == record.id and again.replays == 1
    assert len({a.task_id for a in again.attempts}) == 2  # a new task, recorded under the same event

    running = _cli(base_env, "events", "replay", "--type", "nothing.matches", "--yes")
    assert running.returncode == 0 and "replayed 0 event(s)" in running.stdout


def test_dead_letters_replay_takes_the_same_filters_and_a_dry_run(
    start_ingress, start_worker, redis_client, records, base_env
):
    env = {**base_env, **KEYS}
    url = start_ingress(HISTORY_APP, extra_env=KEYS)
    start_worker(HISTORY_APP, extra_env=KEYS)
    payloads = [
        webhook_payload("d-a-1", account={"id": "acct-a"}, test_fail=True),
        webhook_payload("d-a-2", event_type="comment.created", account={"id": "acct-a"}, test_fail=True),
        webhook_payload("d-b-1", account={"id": "acct-b"}, test_fail=True),
    ]
    for payload in payloads:
        assert post_signed(url, payload, WEBHOOK_SECRET).status_code == 202
    letters = DeadLetterStore(redis_client, max_entries=100, retention=3600, completion_ttl=600)
    wait_until(lambda: letters.count() == 3, timeout=30, what="three dead letters")

    dry = _cli(env, "dead-letters", "replay", "--account", "acct-a", "--type", "file.", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 dead letter(s) would be replayed" in dry.stdout and "resource=d-a-1" in dry.stdout
    assert letters.count() == 3

    redis_client.select(1)
    redis_client.set("test:heal", "1")
    redis_client.select(0)
    done = _cli(env, "dead-letters", "replay", "--account", "acct-a", "--since", "1h")
    assert done.returncode == 0, done.stderr
    assert "replayed 2 dead letter(s)" in done.stdout
    wait_until(lambda: len(records("done")) == 2, timeout=30, what="both of account A's events to run again")
    assert sorted(r["resource"] for r in records("done")) == ["d-a-1", "d-a-2"]
    assert [x.job.resource_id for x in letters.recent() if x.job is not None] == ["d-b-1"]
    replays = {r.resource_id: r.replays for r in _history(redis_client).newest()}
    assert replays == {"d-a-1": 1, "d-a-2": 1, "d-b-1": 0}  # the history counts dead-letter replays too

    nothing = _cli(env, "dead-letters", "replay")
    assert nothing.returncode == 2 and "give a filter, or pass --all" in nothing.stderr


def test_events_cli_errors_are_one_line(base_env, redis_client):
    down = {**base_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    listed = _cli(down, "events", "list")
    assert listed.returncode == 1
    assert listed.stderr.startswith("frameio-kit events: Redis unavailable:") and "Traceback" not in listed.stderr

    bad_time = _cli(base_env, "events", "list", "--since", "yesterday")
    assert bad_time.returncode == 2 and "neither a duration" in bad_time.stderr
    bad_status = _cli(base_env, "events", "list", "--status", "finished")
    assert bad_status.returncode == 2 and "statuses are queued, running" in bad_status.stderr
    unfiltered = _cli(base_env, "events", "replay", "--yes")
    assert unfiltered.returncode == 2 and "give a filter, or pass --all" in unfiltered.stderr
    missing = _cli(base_env, "events", "show", "0123456789abcdef")
    assert missing.returncode == 1 and "no event '0123456789abcdef'" in missing.stderr
    empty = _cli(base_env, "events", "list")
    assert empty.returncode == 0 and empty.stdout.strip() == "0 event(s)"
