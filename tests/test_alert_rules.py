"""The shipped Prometheus alerting rules (deploy/prometheus/alerts.yml): valid, unit-tested with
`promtool test rules`, each rule with a case where it fires and one where it stays quiet, and every
metric they read is one the kit exports (or, for deferrals, the name the rate limiter exports)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT

# Read at import: the suite's autouse fixture clears FRAMEIO_KIT_* variables before each test.
REQUIRED = os.environ.get("FRAMEIO_KIT_REQUIRE_PROMTOOL") == "1" or os.environ.get("CI", "").lower() in {"1", "true"}
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if REQUIRED:
            pytest.fail(
                "promtool is missing and CI (or FRAMEIO_KIT_REQUIRE_PROMTOOL=1) needs it: .ci/run installs Debian's "
                "`prometheus` package, which has it",
                pytrace=False,
            )
        pytest.skip("promtool is not installed (apt-get install prometheus); CI runs these tests")
    return found


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in _load(RULES)["groups"] for rule in group["rules"]}


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in _load(RULE_TESTS)["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert sorted(fires) == sorted(_alerts())
    assert sorted(quiet) == sorted(_alerts())


def test_the_asked_for_alerts_are_there() -> None:
    assert set(_alerts()) >= {
        "FrameioKitDeadLettersRising",
        "FrameioKitQueueBacklogOld",
        "FrameioKitHandlerFailureRatio",
        "FrameioKitNoWorkerConsuming",
        "FrameioKitIngress5xx",
        "FrameioKitDeferralsPilingUp",
        "FrameioKitHandlerPaused",
    }


def test_rules_read_only_metrics_the_kit_exports() -> None:
    """A renamed metric would leave its alert silent forever: every name a rule reads must appear in the
    source that exports it (prometheus_client adds `_total` to counters)."""
    source = "\n".join(
        p.read_text(encoding="utf-8") for pkg in ("shared", "ingress", "workers") for p in (ROOT / pkg).rglob("*.py")
    )
    exported = set(re.findall(r'"(frameio_kit_[a-z_]+)"', source))
    read = {name for rule in _alerts().values() for name in re.findall(r"frameio_kit_[a-z_]+", rule["expr"])}
    missing = sorted(n for n in read if n not in exported and n.removesuffix("_total") not in exported)
    assert missing == []
