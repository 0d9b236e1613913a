"""README's "Testing your integration" snippet, run as a user would: next to the README's own
`myapp.py` (from "Writing an integration"), in a fresh folder, in a subprocess (issue 25, item 7)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

_BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.M | re.S)


def section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def python_blocks(title: str) -> list[str]:
    return _BLOCK.findall(section(title))


def test_the_testing_snippet_runs_against_the_readmes_own_myapp(base_env, tmp_path):
    (myapp,) = [block for block in python_blocks("Writing an integration") if block.startswith("# myapp.py")]
    (tmp_path / "myapp.py").write_text(myapp)
    snippet = tmp_path / "test_snippet.py"
    snippet.write_text("\n".join(python_blocks("Testing your integration")))
    env = {**base_env, "WEBHOOK_SECRET": "w" * 40, "CUSTOM_ACTION_SECRET": "a" * 40, "PYTHONPATH": str(tmp_path)}
    # The project root stays importable through the installed package, not through PYTHONPATH: a user's view.
    done = subprocess.run(
        [sys.executable, str(snippet)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready: file-1" in done.stdout
