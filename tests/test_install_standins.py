"""docs/install.md's "Try the install flow locally without Adobe credentials", run as written (only the
ports and the Redis are this test's own): `python -m tests.install_standins` answers as IMS and as the
Frame.io API, and an ingress of tests/apps/install.py pointed at it serves /install and sends the
sign-in to it (issue 25, item 7)."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from tests.helpers import ROOT, Service, cli_command, free_port

pytestmark = pytest.mark.e2e


def documented_commands() -> str:
    text = (ROOT / "docs" / "install.md").read_text()
    start = text.index("\n## Try the install flow locally without Adobe credentials\n")
    return re.search(r"```bash\n(.*?)```", text[start:], flags=re.S).group(1)  # type: ignore[union-attr]


def test_the_documented_standins_and_ingress_start_and_answer(base_env, redis_server, redis_client, tmp_path):
    commands = documented_commands()
    generator = re.search(r"<<'PY'\n(.*?)\nPY\n", commands, flags=re.S).group(1)  # type: ignore[union-attr]
    assert "python -m tests.install_standins --port 8900" in commands
    assert "frameio-kit ingress tests.apps.install:app" in commands
    generated = subprocess.run([sys.executable, "-c", generator], capture_output=True, text=True, check=True).stdout
    env_file = dict(line.split("=", 1) for line in generated.splitlines())

    api_port, ingress_port = free_port(), free_port()
    api_url, ingress_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ingress_port}"
    env = {
        **base_env,
        **{k: v.replace(":8900", f":{api_port}") for k, v in env_file.items()},
        "REDIS_URL": redis_server.url,
        "TEST_RECORD_URL": redis_server.db_url(1),
        "TEST_PUBLIC_URL": ingress_url,
    }
    standins = Service(
        "standins", [sys.executable, "-m", "tests.install_standins", "--port", str(api_port)], env, tmp_path, cwd=ROOT
    )
    ingress = Service(
        "ingress",
        cli_command("ingress", "tests.apps.install:app", "--port", str(ingress_port)),
        env,
        tmp_path,
        cwd=ROOT,
    )
    try:
        standins.wait_for_output(re.escape(f"FRAMEIO_KIT_IMS_URL={api_url}"))
        ingress.wait_for_http(f"{ingress_url}/install")
        with httpx.Client(base_url=ingress_url) as browser:
            to_adobe = browser.get("/install/login")
            assert to_adobe.status_code in (302, 303), to_adobe.text
            assert to_adobe.headers["location"].startswith(f"{api_url}/ims/authorize/v2")
            back = httpx.get(to_adobe.headers["location"])  # the stand-in approves at once
            assert back.status_code == 302 and back.headers["location"].startswith(f"{ingress_url}/install/callback")
        assert httpx.get(f"{api_url}/v4/accounts").status_code == 401  # the API wants the signed-in user's token
    finally:
        ingress.stop()
        standins.stop()
