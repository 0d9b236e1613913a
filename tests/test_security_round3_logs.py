"""Issue 21, points 9 and 10 as attacks on real processes: requests for accounts a secret resolver
does not know (401, no error line, no 5xx), a body checked for its signature before validation under
install records, and line breaks in request values that must not split or forge log lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from frameio_kit import testing
from shared.logs import KIT_LOGGERS
from tests.apps.quiet_resolver import ANSWERS_NONE, BROKEN, KNOWN, KNOWN_SECRET, UNKNOWN
from tests.frameio_standin import FrameioStandIn
from tests.helpers import ROOT, WEBHOOK_SECRET, Service, post_signed, wait_until, webhook_payload
from tests.ims_standin import ImsServer
from tests.install_support import Admin, Ingress, webhook
from tests.metrics_support import samples

pytestmark = pytest.mark.e2e

QUIET_APP = "tests.apps.quiet_resolver:app"
FORGED = "FORGED-LINE 2026-01-01 00:00:00,000 INFO    frameio_kit.ingress: all is well"


def ingress_log(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("ingress-*.log")))


def tenant_webhook(account: str, resource: str) -> dict[str, Any]:
    return testing.webhook_payload(
        "file.ready",
        resource_id=resource,
        resource_type="file",
        account_id=account,
        workspace_id="ws-1",
        project_id="proj-1",
        user_id="user-1",
    )


def requests_by_outcome(url: str) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples(url + "/metrics").items()
        if name == "frameio_kit_ingress_requests_total"
    }


def no_forged_line(log: str) -> None:
    """The forged text is in the log only inside the line it came with, escaped."""
    assert not [line for line in log.splitlines() if line.startswith("FORGED-LINE")], log[-3000:]


# -- point 9: a resolver that does not know the account -----------------------------------------


def test_an_account_the_resolver_does_not_know_is_401_quietly_and_not_a_5xx(start_ingress, tmp_path: Path) -> None:
    url = start_ingress(QUIET_APP)
    bad_signature = post_signed(url, tenant_webhook(KNOWN, "r-bad"), "not-the-secret")
    assert bad_signature.status_code == 401
    for account in (UNKNOWN, ANSWERS_NONE):
        refused = post_signed(url, tenant_webhook(account, f"r-{account}"), "a-guessed-secret")
        assert refused.status_code == 401
        assert refused.json() == bad_signature.json()  # nothing tells an unknown account from a bad signature
    assert post_signed(url, tenant_webhook(KNOWN, "r-good"), KNOWN_SECRET).status_code == 202

    wait_until(
        lambda: ingress_log(tmp_path).count("file.ready rejected (SignatureInvalid)") == 3,
        what="the three refusals in the ingress log",
    )
    log = ingress_log(tmp_path)
    assert " ERROR " not in log
    assert "empty secret" not in log
    outcomes = requests_by_outcome(url)
    assert outcomes.get("rejected_401") == 3
    assert outcomes.get("enqueued") == 1
    assert {k for k in outcomes if k.startswith(("unavailable", "error"))} == set()


def test_a_resolver_that_raises_is_still_503_and_an_error_line(start_ingress, tmp_path: Path) -> None:
    url = start_ingress(QUIET_APP)
    response = post_signed(url, tenant_webhook(BROKEN, "r-broken"), "anything")
    assert response.status_code == 503
    assert response.json() == {"error": "Configuration error."}
    wait_until(lambda: " ERROR " in ingress_log(tmp_path), what="the resolver failure as an error line")
    assert "raised RuntimeError" in ingress_log(tmp_path)
    assert requests_by_outcome(url).get("unavailable_503") == 1


def test_install_records_check_the_signature_before_validating_the_body(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    """A body that does not fit the event model is 422 (named fields) only once it is signed: the
    signature was checked first. Unsigned, the same body is 401, as any junk is."""
    standin = api[1]
    admin = Admin(ingress.url)
    admin.sign_in()
    assert "Installed." in admin.install("acc-A", "ws-1").text
    (hook,) = standin.in_workspace("webhook", "acc-A", "ws-1")
    secret = standin.secrets[hook["id"]]
    body = webhook("acc-A", "ws-1")
    del body["resource"]

    assert post_signed(ingress.url + "/", body, "a-guessed-secret").status_code == 401
    signed = post_signed(ingress.url + "/", body, secret)
    assert signed.status_code == 422, signed.text
    assert "resource" in signed.text
    unknown = post_signed(ingress.url + "/", webhook("acc-A", "ws-unknown"), secret)
    assert unknown.status_code == 401
    assert post_signed(ingress.url + "/", webhook("acc-A", "ws-1"), secret).status_code == 202


# -- point 10: request values in log lines --------------------------------------------------------


def test_a_line_break_in_an_install_account_id_stays_in_one_escaped_line(
    api: tuple[ImsServer, FrameioStandIn], ingress: Ingress
) -> None:
    admin = Admin(ingress.url)
    admin.sign_in()
    admin.status("acc-A", "ws-1")  # a CSRF token of this session
    forged_account = f"acc-Z\n{FORGED}"
    page = admin.post("execute", forged_account, "ws-1", op="install", **{"field.api_key": "k", "field.region": "eu"})
    assert page.status_code == 403

    assert ingress.service is not None
    service = ingress.service
    wait_until(lambda: "install refused: account acc-Z" in service.output(), what="the refusal in the log")
    log = service.output()
    no_forged_line(log)
    assert f"install refused: account acc-Z\\n{FORGED} is not in allowed_accounts" in log


def test_line_breaks_in_a_webhook_stay_in_one_escaped_line_in_ingress_and_worker(
    start_ingress,
    start_worker: Callable[..., Service],
    records: Callable[[str], list[dict[str, Any]]],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    url = start_ingress()
    worker = start_worker(concurrency=1)
    resource = f"file-1\n{FORGED}\x1b[2J"
    assert post_signed(url, webhook_payload(resource), WEBHOOK_SECRET).status_code == 202
    # A type with no handler, signed: the ingress logs it ("ignored") before anything else reads it.
    unhandled = webhook_payload("file-2", event_type=f"file.unknown\n{FORGED}")
    assert post_signed(url, unhandled, WEBHOOK_SECRET).status_code == 200

    wait_until(lambda: [r for r in records("done") if r["resource"] == resource], what="the handler to finish")
    wait_until(lambda: "done file.ready resource=file-1" in worker.output(), what="the worker's done line")
    worker_log = worker.output()
    no_forged_line(worker_log)
    escaped = f"file.ready resource=file-1\\n{FORGED}\\x1b[2J task="
    assert f"started {escaped}" in worker_log and f"done {escaped}" in worker_log
    assert "\x1b" not in worker_log

    wait_until(lambda: "ignored (no handler)" in ingress_log(tmp_path), what="the ingress's line for it")
    ingress_lines = ingress_log(tmp_path)
    no_forged_line(ingress_lines)
    assert re.search(rf"file\.unknown\\n{re.escape(FORGED)} ignored \(no handler\)", ingress_lines)


# -- the filter covers every kit logger ------------------------------------------------------------


def test_every_frameio_kit_logger_in_the_source_is_escaped() -> None:
    """A module that logs under a new `frameio_kit.*` name must add it to KIT_LOGGERS."""
    named = {
        name
        for package in ("ingress", "shared", "workers", "frameio_kit")
        for path in (ROOT / package).rglob("*.py")
        for name in re.findall(r"getLogger\(\"(frameio_kit[\w.]*)\"\)", path.read_text(encoding="utf-8"))
    }
    assert named and named <= set(KIT_LOGGERS)
