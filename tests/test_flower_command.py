"""`frameio-kit flower`: Flower starts only behind a real FLOWER_BASIC_AUTH."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from frameio_kit.cli import main
from tests.helpers import ROOT, cli_command


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "admin:change-me", "admin:", "admin", ":secret-pw", "ops:a-good-password,admin:change-me"],
)
def test_flower_refuses_a_missing_empty_or_example_password(
    value: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if value is None:
        monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    else:
        monkeypatch.setenv("FLOWER_BASIC_AUTH", value)
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail(f"Flower was started: {a}"))
    assert main(["flower"]) == 2
    assert "refusing to start" in capsys.readouterr().err


def test_flower_with_the_example_env_exits_2_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    env["FLOWER_BASIC_AUTH"] = "admin:change-me"  # .env.example's line
    done = subprocess.run(
        cli_command("flower"), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "FLOWER_BASIC_AUTH" in done.stderr and "example password" in done.stderr


def test_flower_with_a_real_password_becomes_celery_flower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "ops:Zq8-long-random,audit:another-one")
    started: list[list[str]] = []

    def execvp(file: str, argv: list[str]) -> None:
        started.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvp", execvp)
    with pytest.raises(SystemExit):
        main(["flower"])
    assert started == [[sys.executable, "-m", "celery", "-A", "workers", "flower"]]
