"""Acceptance (issue 25): every Python example of frameio-kit v0.0.10's README and docs/, run here.

Skipped unless FRAMEIO_KIT_UPSTREAM_CHECKOUT names a local checkout of the public repository at tag
v0.0.10; nothing of it is kept in this repository, the examples are read from it at run time.

Each ```python block (README.md, docs/**/*.md|.mdx, in path order) is one example, named
`file:line`. It is written to a module as it stands and imported in a subprocess with fake secrets,
a test Redis and a local Frame.io API stand-in in the environment; the App it builds must pass
`validate_configuration()`. Then, where it registers handlers, a real `frameio-kit ingress` (and a
real `frameio-kit worker` for webhooks) serve that module and each handler gets a signed request:
a webhook must be answered 202 and run in the worker (what the handler prints appears in its
output), an action must answer with one of the Messages or Forms the example writes (a Form is
submitted with its own default values), or with the sign-in Form when it requires user auth.

Documentation fragments are adjusted the way a reader adjusts them, and each adjustment is recorded:
a fragment that uses names defined earlier on its page runs after the page's earlier examples (and
`import os`, `from frameio_kit import *`, `app = App()`); a literal `OAuthConfig(...)` or
`on_action(...)` placeholder gets fake arguments; a fragment with top-level `await` or `return` runs
inside an async function. What still cannot run (syntax fragments, names or packages the reader
supplies) is classified, never passed silently.

Each example's outcome is `pass`, `fragment`, `differs-by-design` or `fails`, with a reason; the
test for an example asserts the outcome recorded in EXPECTED below (`pass` when absent). With
FRAMEIO_KIT_UPSTREAM_REPORT set, the table is also written there as JSON.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.helpers import wait_until

CHECKOUT = os.environ.get("FRAMEIO_KIT_UPSTREAM_CHECKOUT", "").strip()
REPORT = os.environ.get("FRAMEIO_KIT_UPSTREAM_REPORT", "").strip()
TAG = "v0.0.10"

PREAMBLE = "import os\nfrom frameio_kit import *  # noqa\napp = App()\n"
"""What a fragment gets before its page's earlier examples: the imports and `app` every page assumes."""

OAUTH_FILL = 'OAuthConfig(client_id="upstream-example-client", client_secret="upstream-example-secret")'
FILE_NAME = "upstream-example-clip.mov"
ENCRYPTION_KEY = Fernet.generate_key().decode()
SESSION_SECRET = "upstream-example-session-secret-0123456789abcdef"
WEBHOOK_SECRET = "upstream-example-webhook-secret-0123456789"
ACTION_SECRET = "upstream-example-action-secret-0123456789"

FASTAPI = importlib.util.find_spec("fastapi") is not None
"""v0.0.10 depends on FastAPI, this kit does not: its FastAPI examples run only where it is installed."""

# The outcomes that are not `pass` (the run computes the reason; the report carries it).
FRAGMENTS = [
    "docs/getting-started/quickstart.md:100",  # two decorator lines, no function
    "docs/guides/client-api.md:134",  # top-level await on an `event` nothing defines
    "docs/guides/client-api.md:150",  # files.show(...) placeholder
    "docs/guides/custom-actions.md:165",  # handler calls send_notification
    "docs/guides/custom-actions.md:290",  # resolver reads the reader's db
    "docs/guides/custom-actions.md:371",  # fields=[...] placeholder
    "docs/guides/middleware.md:75",  # middleware classes defined nowhere on the page
    "docs/guides/opentelemetry.md:118",  # the reader's gRPC OTLP exporter
    "docs/guides/opentelemetry.md:152",  # AuthMiddleware defined nowhere
    "docs/guides/user-auth.md:377",  # files.show(...) placeholders in both handlers
    "docs/guides/webhooks.md:100",  # handlers call process_file / notify_team
    "docs/guides/webhooks.md:151",  # resolver reads the reader's db
    "docs/guides/webhooks.md:181",  # background task calls run_analysis
    "docs/guides/client-api.md:178",  # get_install_config() on the page's App, which has no install=True
    "docs/guides/middleware.md:34",  # a method shown outside its class
    "docs/guides/middleware.md:46",
    "docs/guides/middleware.md:57",
]
BY_DESIGN = [
    "docs/guides/app.md:81",  # DynamoDBStorage
    "docs/guides/self-service-install.md:303",
    "docs/guides/user-auth.md:167",
    "docs/guides/user-auth.md:205",
    "docs/guides/user-auth.md:238",
    "docs/guides/app.md:100",  # install=True without handlers: validate_configuration() reports it
    "docs/guides/self-service-install.md:137",
    "docs/guides/self-service-install.md:157",
    "docs/guides/self-service-install.md:178",
    "docs/guides/self-service-install.md:286",
    "docs/guides/client-api.md:161",  # require_user_auth without oauth= refused when decorating
]
FASTAPI_EXAMPLES = {
    # with FastAPI installed / without it
    "docs/guides/custom-actions.md:387": ("pass", "differs-by-design"),
    "docs/guides/user-auth.md:99": ("pass", "differs-by-design"),
    "docs/guides/custom-actions.md:413": ("fragment", "differs-by-design"),  # analytics / the page's OAuth App
    # FastAPI's include_router() takes an APIRouter only; app.mount(prefix, kit.create_router()) works
    "docs/guides/mounting.md:53": ("fails", "differs-by-design"),
    "docs/guides/mounting.md:104": ("fails", "differs-by-design"),
    "docs/guides/mounting.md:163": ("fails", "differs-by-design"),  # the page's FastAPI app
}
EXPECTED: dict[str, str] = {
    **dict.fromkeys(FRAGMENTS, "fragment"),
    **dict.fromkeys(BY_DESIGN, "differs-by-design"),
    **{k: v[0] if FASTAPI else v[1] for k, v in FASTAPI_EXAMPLES.items()},
}

pytestmark = [
    pytest.mark.upstream,
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not CHECKOUT, reason="set FRAMEIO_KIT_UPSTREAM_CHECKOUT to a checkout of frameio-kit v0.0.10"),
]


# -- the examples ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    id: str
    page: str
    index: int
    code: str


_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)")


def extract(root: Path) -> list[Example]:
    """Every ```python block of README.md and docs/ (recursively, .md and .mdx), dedented."""
    pages = [root / "README.md"] if (root / "README.md").exists() else []
    pages += sorted(p for p in (root / "docs").rglob("*") if p.suffix in {".md", ".mdx"} and p.is_file())
    examples: list[Example] = []
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        rel = page.relative_to(root).as_posix()
        i = 0
        while i < len(lines):
            opened = _FENCE.match(lines[i])
            if not opened:
                i += 1
                continue
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if opened.group(2) in {"python", "py"}:
                code = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
                examples.append(Example(f"{rel}:{i + 1}", rel, len(examples), code))
            i = end + 1
    return examples


def _checkout() -> tuple[Path, bool]:
    root = Path(CHECKOUT).expanduser().resolve()
    verified = False
    if (root / ".git").exists():
        done = subprocess.run(
            ["git", "-C", str(root), "describe", "--tags", "--exact-match"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout.strip() != TAG:
            pytest.skip(f"{root} is not at tag {TAG} ({done.stdout.strip() or done.stderr.strip()})")
        verified = True
    return root, verified


EXAMPLES: list[Example] = extract(Path(CHECKOUT).expanduser()) if CHECKOUT and Path(CHECKOUT).is_dir() else []


# -- results ----------------------------------------------------------------------------------------


@dataclass
class Result:
    id: str
    outcome: str = "pass"
    reason: str = ""
    adjustments: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def settle(self, outcome: str, reason: str) -> Result:
        if self.outcome == "pass":
            self.outcome, self.reason = outcome, reason
        return self


RESULTS: dict[str, Result] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if not REPORT or not RESULTS:
        return
    _, verified = _checkout()
    ordered = [asdict(RESULTS[e.id]) for e in EXAMPLES if e.id in RESULTS]
    summary: dict[str, int] = {}
    for row in ordered:
        summary[row["outcome"]] = summary.get(row["outcome"], 0) + 1
    as_written = sum(1 for row in ordered if row["outcome"] == "pass" and not row["adjustments"])
    Path(REPORT).write_text(
        json.dumps(
            {
                "checkout": str(Path(CHECKOUT).resolve()),
                "tag": TAG,
                "tag_verified": verified,
                "examples": len(EXAMPLES),
                "summary": summary,
                "pass_as_written": as_written,
                "results": ordered,
            },
            indent=2,
        )
    )


# -- building each example's module -------------------------------------------------------------------


@dataclass
class Program:
    source: str
    adjustments: list[str]
    wrapped: bool = False
    syntax_error: str = ""


def fill_placeholders(code: str) -> tuple[str, list[str]]:
    """A reader's fill for v0.0.10's `OAuthConfig(...)` and `on_action(...)` placeholders."""
    notes: list[str] = []
    if "OAuthConfig(...)" in code:
        code = code.replace("OAuthConfig(...)", OAUTH_FILL)
        notes.append("placeholder OAuthConfig(...) filled with fake client credentials")
    count = [0]

    def action(match: re.Match[str]) -> str:
        count[0] += 1
        name = f'"example.action_{count[0]}", name="Example {count[0]}", description="Example"'
        return f"on_action({name}{match.group(1)}"

    code, n = re.subn(r"on_action\(\.\.\.(\)|,)", action, code)
    if n:
        notes.append("placeholder on_action(...) filled with an event type, name and description")
    return code, notes


def program(code: str, context: str = "") -> Program:
    """The module for `code` after `context`: as it stands, or inside an async function when it
    has top-level `await` or `return` (a handler's body)."""
    code, notes = fill_placeholders(code)
    try:
        compile(code, "<example>", "exec")
        return Program(context + code, notes)
    except SyntaxError as exc:
        message = exc.msg
    if message in {"'await' outside function", "'return' outside function"}:
        body = textwrap.indent(code, "    ")
        wrapped = (
            f"{context}import asyncio as _asyncio\n\n\nasync def _upstream_example():\n{body}\n\n"
            "_upstream_result = _asyncio.run(_upstream_example())\n"
        )
        try:
            compile(wrapped, "<example>", "exec")
        except SyntaxError as again:
            return Program("", notes, syntax_error=again.msg)
        what = "top-level await" if "await" in message else "top-level return (a handler's body)"
        return Program(wrapped, [*notes, f"{what}: run inside an async function"], wrapped=True)
    return Program("", notes, syntax_error=message)


def env_names(code: str) -> set[str]:
    return set(re.findall(r"""os\.(?:environ\[|environ\.get\(|getenv\()\s*["']([A-Za-z0-9_]+)["']""", code))


def example_env(base_env: dict[str, str], code: str, api_url: str) -> dict[str, str]:
    """Fake secrets for every variable the example reads, the kit's own, a test Redis and API."""
    env = {
        **base_env,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CUSTOM_ACTION_SECRET": ACTION_SECRET,
        "FRAMEIO_KIT_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "FRAMEIO_KIT_SESSION_SECRET": SESSION_SECRET,
        "FRAMEIO_KIT_API_URL": api_url,
        "PYTHONPATH": os.pathsep.join(p for p in (base_env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")) if p),
    }
    for name in env_names(code):
        if name not in env:
            env[name] = ENCRYPTION_KEY if "ENCRYPTION_KEY" in name else f"upstream-{name.lower()}-0123456789abcdef"
    return env


# -- the probe: import a module, describe what it built (run in a subprocess) ------------------------


INSTALL_ACCOUNT = "acc-upstream"
INSTALL_WORKSPACE = "ws-upstream"


def probe_main(module_path: str, out_path: str, options: str) -> None:
    """Import `module_path`; write what it built as JSON to `out_path`.

    `options`: the first module line of the example itself (before it: its page's context), the
    App variables it assigns, and the functions it defines that take an event and use nothing the
    reader supplies (called with a sample event when no App registers them).
    """
    import asyncio
    import importlib.util

    from frameio_kit import ActionEvent, App, Form, Message, WebhookEvent
    from frameio_kit.testing import action_payload, webhook_payload

    wanted = json.loads(options)
    report: dict[str, Any] = {"error": None, "apps": [], "called": [], "result": None}
    sys.path.insert(0, str(Path(module_path).parent))
    name = Path(module_path).stem
    spec = importlib.util.spec_from_file_location(name, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            spec.loader.exec_module(module)
    except BaseException as exc:
        report["error"] = {"type": type(exc).__name__, "message": str(exc)[:800], "name": getattr(exc, "name", None)}
    report["stdout"] = output.getvalue()[-2000:]
    if report["error"] is None:
        result = getattr(module, "_upstream_result", None)
        if isinstance(result, Message | Form):
            report["result"] = result.model_dump(mode="json", exclude_none=True)
        registered = set()
        for var, value in vars(module).items():
            if not isinstance(value, App):
                continue
            specs = [*value.webhook_handlers.values(), *value.action_handlers.values()]
            registered |= {s.func for s in specs}
            own = [s for s in specs if s.func.__code__.co_firstlineno >= wanted["first_line"]]
            if var not in wanted["apps"] and not own:
                continue  # an App of the page's context, untouched by this example
            secrets = seed_installation(value, own) if value.install_options is not None and own else {}
            handlers = [
                {
                    "kind": s.kind,
                    "event_type": s.event_type,
                    "function": s.func.__name__,
                    "line": s.func.__code__.co_firstlineno,
                    "secret": secrets.get(s.event_type) or value.static_secret(s),
                    "install": s.event_type in secrets,
                    "require_user_auth": s.require_user_auth,
                    "resource_types": list(s.resource_types),
                }
                for s in own
            ]
            report["apps"].append(
                {
                    "var": var,
                    "handlers": handlers,
                    "problems": value.validate_configuration(),
                    "install": value.install_options is not None,
                }
            )
        samples = {WebhookEvent: webhook_payload("file.ready"), ActionEvent: action_payload("my_app.analyze")}
        for var in wanted["call"]:
            func = getattr(module, var, None)
            kind = getattr(func, "__annotations__", {}).get("event")
            if func in registered or kind not in samples:
                continue
            try:
                with contextlib.redirect_stdout(output):
                    asyncio.run(func(kind.model_validate(samples[kind])))
                report["called"].append({"function": var, "error": None})
            except Exception as exc:
                report["called"].append({"function": var, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        report["middleware"] = [run_middleware(getattr(module, cls)) for cls in wanted["classes"]]
    Path(out_path).write_text(json.dumps(report))


def run_middleware(cls: Any) -> dict[str, Any]:
    """A `Middleware` subclass the example defines, around a webhook and an action handler of a
    fresh App, in process (as a worker and the ingress run the chain)."""
    import asyncio
    import inspect

    from frameio_kit import ActionEvent, App, Message, Middleware
    from frameio_kit.testing import action_payload, run_webhook, webhook_payload

    needs = (
        [
            p
            for p in inspect.signature(cls).parameters.values()
            if p.default is p.empty and p.kind not in {p.VAR_POSITIONAL, p.VAR_KEYWORD}
        ]
        if isinstance(cls, type)
        else []
    )
    if not (isinstance(cls, type) and issubclass(cls, Middleware)) or needs:  # the example constructs those
        return {"class": getattr(cls, "__name__", str(cls)), "error": None, "skipped": True}
    secret = "upstream-middleware-probe-secret-0123456789"
    try:
        app = App(middleware=[cls()])

        @app.on_webhook("file.ready", secret=secret)
        async def webhook(event: Any) -> None:
            return None

        @app.on_action("probe.action", name="Probe", description="Probe", secret=secret)
        async def action(event: Any) -> Message:
            return Message(title="probed", description=event.resource_id)

        async def both() -> Any:
            await run_webhook(app, webhook_payload("file.ready"))
            spec = app.lookup("probe.action")
            assert spec is not None
            return await app.run(spec, ActionEvent.model_validate(action_payload("probe.action")))

        answer = asyncio.run(both())
        ok = isinstance(answer, Message) and answer.title == "probed"
        return {"class": cls.__name__, "error": None if ok else f"answered {answer!r}", "skipped": False}
    except Exception as exc:
        return {"class": cls.__name__, "error": f"{type(exc).__name__}: {str(exc)[:300]}", "skipped": False}


def seed_installation(app: Any, specs: list[Any]) -> dict[str, str]:
    """An installation of `app` in one workspace, as the install flow leaves it (a webhook for every
    webhook type, an action per action handler, each with its signing secret, the install fields
    filled), saved in the App's own encrypted store: the secrets its handlers are signed with."""
    import asyncio
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from frameio_kit import ActionRecord, Installation, WebhookRecord

    secrets = {s.event_type: f"upstream-install-{s.kind}-secret-{uuid.uuid4().hex}" for s in specs}
    webhooks = [s.event_type for s in specs if s.kind == "webhook"]
    now = datetime.now(UTC)
    record = Installation(
        account_id=INSTALL_ACCOUNT,
        workspace_id=INSTALL_WORKSPACE,
        installed_at=now,
        updated_at=now,
        webhook=WebhookRecord(
            webhook_id="wh-upstream",
            secret=SecretStr(secrets[webhooks[0]]),
            events=webhooks,
            url="https://example.test/",
        )
        if webhooks
        else None,
        actions=[
            ActionRecord(
                action_id=f"action-{s.event_type}",
                secret=SecretStr(secrets[s.event_type]),
                event_type=s.event_type,
                name=s.name,
                description=s.description,
                url="https://example.test/",
            )
            for s in specs
            if s.kind == "action"
        ],
        config={
            f.name: f.default or (f.options[0] if f.options else f"upstream-{f.name}")
            for f in app.install_options.fields
        },
    )
    if webhooks:  # one webhook per workspace carries every event type, with one secret
        secrets.update(dict.fromkeys(webhooks, secrets[webhooks[0]]))

    async def save() -> None:
        try:
            await app.install_store.save(record)
        finally:
            await app.close()

    asyncio.run(save())
    return secrets


@dataclass
class Built:
    program: Program
    path: Path
    probe: dict[str, Any]
    in_context: bool


def run_probe(path: Path, env: dict[str, str], program_: Program, code: str) -> dict[str, Any]:
    out = path.with_suffix(".json")
    source = program_.source
    options = {
        "first_line": len(source.splitlines()) - len(code.splitlines()) + 1 if not program_.wrapped else 1,
        "apps": sorted(app_variables(code)),
        "call": sorted(callable_functions(source, code)),
        "classes": sorted(top_level(code, ast.ClassDef)),
    }
    done = subprocess.run(
        [sys.executable, __file__, "probe", str(path), str(out), json.dumps(options)],
        env=env,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not out.exists():
        return {"error": {"type": "ProbeCrashed", "message": (done.stdout + done.stderr)[-800:], "name": None}}
    return dict(json.loads(out.read_text()))


def top_level(code: str, kind: type[ast.AST] | tuple[type[ast.AST], ...]) -> set[str]:
    """Names of the example's own top-level definitions of `kind`."""
    try:
        return {n.name for n in ast.parse(code).body if isinstance(n, kind)}  # type: ignore[attr-defined]
    except SyntaxError:
        return set()


def app_variables(code: str) -> set[str]:
    """Variables the example assigns an `App(...)` to."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if isinstance(node.value.func, ast.Name) and node.value.func.id == "App":
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def callable_functions(source: str, code: str) -> set[str]:
    """The example's own top-level async functions that use nothing the reader supplies."""
    try:
        own = {n.name for n in ast.parse(code).body if isinstance(n, ast.AsyncFunctionDef)}
    except SyntaxError:
        return set()
    tree = ast.parse(source)
    return {
        n.name
        for n in tree.body
        if isinstance(n, ast.AsyncFunctionDef)
        and n.name in own
        and [a.arg for a in n.args.args] == ["event"]
        and not reader_supplied(source, n)
    }


_BUILT: dict[str, Built | None] = {}


def build(example: Example, workdir: Path, env_for: Callable[[str], dict[str, str]]) -> Built | None:
    """Import the example (as it stands, else after its page's context); None for a syntax fragment."""
    if example.id in _BUILT:
        return _BUILT[example.id]
    alone = program(example.code)
    if alone.syntax_error:
        _BUILT[example.id] = None
        return None
    code = fill_placeholders(example.code)[0]
    path = workdir / f"upstream_example_{example.index:03d}.py"
    path.write_text(alone.source)
    built = Built(alone, path, run_probe(path, env_for(alone.source), alone, code), in_context=False)
    error = built.probe["error"]
    if error and error["type"] in {"NameError", "AttributeError"}:
        context = page_context(example, workdir, env_for)
        again = program(example.code, context)
        path.write_text(again.source)
        probe = run_probe(path, env_for(again.source), again, code)
        if probe["error"] is None or probe["error"] != error:
            note = "run after its page's earlier examples and the page preamble (names the page defined)"
            again.adjustments.insert(0, note)
            built = Built(again, path, probe, in_context=True)
        else:
            path.write_text(alone.source)
    _BUILT[example.id] = built
    return built


def page_context(example: Example, workdir: Path, env_for: Callable[[str], dict[str, str]]) -> str:
    parts = [PREAMBLE]
    for earlier in EXAMPLES:
        if earlier.page != example.page or earlier.index >= example.index:
            continue
        built = build(earlier, workdir, env_for)
        if built is not None and built.probe["error"] is None and not built.program.wrapped:
            parts.append(fill_placeholders(earlier.code)[0])
    return "\n".join(parts) + "\n"


# -- reading the example's own expectations ---------------------------------------------------------


def function_node(source: str, name: str, line: int) -> ast.AsyncFunctionDef | ast.FunctionDef | None:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == name:
            decorated = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if decorated <= line <= node.body[0].lineno:
                return node
    return None


def module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                names |= set(__import__(node.module or "").__dict__)
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        else:
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def free_names(func: ast.AsyncFunctionDef | ast.FunctionDef, defined: set[str]) -> set[str]:
    """Names the function loads that neither it, the module (`defined`) nor builtins define."""
    local = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            local.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            local |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not func:
            local.add(node.name)
    loaded = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loaded - local - defined - set(dir(builtins))


def reader_supplied(source: str, func: ast.AsyncFunctionDef | ast.FunctionDef) -> list[str]:
    """What the function (and the module's functions it calls) leaves to the reader: names nothing
    defines, and `...` placeholders passed as arguments."""
    tree = ast.parse(source)
    defined = module_names(tree)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    seen, todo, missing, placeholders = {func.name}, [func], set(), False
    while todo:
        current = todo.pop()
        missing |= free_names(current, defined)
        for node in ast.walk(current):
            if isinstance(node, ast.Call) and any(
                isinstance(a, ast.Constant) and a.value is Ellipsis
                for a in [*node.args, *(k.value for k in node.keywords)]
            ):
                placeholders = True
            if isinstance(node, ast.Name) and node.id in functions and node.id not in seen:
                seen.add(node.id)
                todo.append(functions[node.id])
    notes = [f"calls {', '.join(sorted(missing))}, which the reader supplies"] if missing else []
    return notes + (["passes placeholder `...` arguments"] if placeholders else [])


def answer_titles(func: ast.AST) -> set[str]:
    """The constant titles of the Messages and Forms the function writes."""
    titles: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"Message", "Form"}:
            for kw in node.keywords:
                if kw.arg == "title" and isinstance(kw.value, ast.Constant):
                    titles.add(str(kw.value.value))
    return titles


def returns_nothing(func: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    return all(r.value is None for r in ast.walk(func) if isinstance(r, ast.Return))


def printed(func: ast.AST, event: Any) -> list[str]:
    """What the function's print() calls show, for those that read nothing but `event`."""
    lines: list[str] = []
    for node in ast.walk(func):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"):
            continue
        if len(node.args) != 1 or node.keywords:
            continue
        names = {n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name)}
        if names <= {"event"}:
            expression = ast.Expression(node.args[0])
            lines.append(str(eval(compile(expression, "<print>", "eval"), {"event": event})))  # noqa: S307
    return lines


# -- a Frame.io API stand-in for handlers that call app.client ----------------------------------------


class ApiStandIn(ThreadingHTTPServer):
    calls: list[tuple[str, str, Any]]


class _ApiHandler(BaseHTTPRequestHandler):
    server: ApiStandIn

    def log_message(self, *_: Any) -> None:
        return None

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path, None))
        found = re.fullmatch(r"/v4/accounts/[^/]+/files/([^/?]+)", self.path.split("?")[0])
        if found:
            self._answer(200, {"data": {"id": found.group(1), "name": FILE_NAME, "type": "file"}})
        elif self.path.startswith("/v4/me"):
            self._answer(200, {"data": {"id": "user-1", "name": "Upstream Reader"}})
        else:
            self._answer(404, {"errors": [{"detail": "not found"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"null")
        self.server.calls.append(("POST", self.path, body))
        if re.fullmatch(r"/v4/accounts/[^/]+/files/[^/]+/comments", self.path):
            self._answer(200, {"data": {"id": str(uuid.uuid4()), **(body or {}).get("data", {})}})
        else:
            self._answer(404, {"errors": [{"detail": "not found"}]})


@pytest.fixture(scope="module")
def api() -> Iterator[ApiStandIn]:
    server = ApiStandIn(("127.0.0.1", 0), _ApiHandler)
    server.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upstream-examples")


# -- running one example ----------------------------------------------------------------------------


def upstream_dependencies() -> set[str]:
    """The packages v0.0.10 itself depends on (its pyproject.toml), as import names."""
    project = tomllib.loads((Path(CHECKOUT) / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("-", "_") for d in project["dependencies"]}


NO_OAUTH = "requires user auth but App has no oauth"
INSTALL_WITHOUT_HANDLERS = "install=True but no webhook or action handler is registered"


def classify_error(result: Result, built: Built, example: Example) -> Result:
    error = built.probe["error"]
    kind, message, name = error["type"], error["message"], error.get("name") or ""
    if kind in {"ModuleNotFoundError", "ImportError"} and name and not name.startswith("frameio_kit"):
        package = name.split(".")[0]
        if package in upstream_dependencies():
            return result.settle(
                "differs-by-design",
                f"imports {package}, a dependency of v0.0.10 but not of this kit (Starlette only); "
                f"with {package} installed it runs",
            )
        return result.settle("fragment", f"imports {name}, which the reader installs (neither kit depends on it)")
    if kind == "ConfigurationError" and "DynamoDBStorage" in message:
        return result.settle(
            "differs-by-design", "DynamoDBStorage is refused: records stay in the Redis store every process shares"
        )
    if kind == "ConfigurationError" and NO_OAUTH in message:
        return result.settle(
            "differs-by-design",
            "require_user_auth on an App without oauth= is refused when decorating (v0.0.10 reports it from "
            "validate_configuration()); no App with oauth= is defined before it",
        )
    failed, missing = page_failures(example)
    if built.in_context and failed and kind != "NameError":
        if missing:
            return result.settle(
                "differs-by-design", f"needs its page's earlier examples, which import {', '.join(sorted(missing))}"
            )
        return result.settle("fails", f"needs its page's earlier examples {', '.join(failed)}, which fail")
    if kind == "NameError":
        return result.settle("fragment", f"uses a name neither the example nor its page defines ({message})")
    if "..." in built.program.source and kind in {"TypeError", "ValidationError"}:
        return result.settle("fragment", f"placeholder `...` arguments: {kind}: {message[:200]}")
    return result.settle("fails", f"{kind}: {message}")


def page_failures(example: Example) -> tuple[list[str], set[str]]:
    """Earlier examples of the page that failed to import, and the v0.0.10 dependencies among the
    modules they could not import (when that is all that failed)."""
    failed: list[str] = []
    missing: set[str] = set()
    others = False
    for earlier in EXAMPLES:
        built = _BUILT.get(earlier.id)
        if earlier.page != example.page or earlier.index >= example.index or built is None:
            continue
        error = built.probe["error"]
        if error is None or error["type"] == "NameError":
            continue
        failed.append(earlier.id)
        package = (error.get("name") or "").split(".")[0]
        if error["type"] == "ModuleNotFoundError" and package in upstream_dependencies():
            missing.add(package)
        else:
            others = True
    return failed, (set() if others else missing)


def post(url: str, payload: dict[str, Any], secret: str) -> httpx.Response:
    from frameio_kit.testing import post_signed

    return post_signed(url + "/", payload, secret, timeout=15)


def installed_ids(handler: dict[str, Any], kind: str) -> dict[str, str]:
    """The seeded installation's account and workspace (and action id) for a handler whose secret it holds."""
    if not handler.get("install"):
        return {}
    ids = {"account_id": INSTALL_ACCOUNT, "workspace_id": INSTALL_WORKSPACE}
    return {**ids, "action_id": f"action-{handler['event_type']}"} if kind == "action" else ids


def check_action(
    result: Result, url: str, handler: dict[str, Any], node: Any, ingress: Any, secret: str
) -> tuple[bool, str]:
    from frameio_kit import ActionEvent
    from frameio_kit.testing import action_payload

    resource_type = (handler["resource_types"] or ["file"])[0]
    resource = f"res-{uuid.uuid4().hex[:8]}"
    ids = installed_ids(handler, "action")
    payload = action_payload(handler["event_type"], resource_id=resource, resource_type=resource_type, **ids)
    response = post(url, payload, secret)
    if response.status_code != 200:
        return False, f"action {handler['event_type']}: {response.status_code} {response.text[:200]}"
    answer = response.json() if response.content else None
    if handler["require_user_auth"]:
        fields = (answer or {}).get("fields", [])
        if not any(f.get("type") == "link" and "/auth/login" in str(f.get("value")) for f in fields):
            return False, f"action {handler['event_type']}: no sign-in Form: {answer}"
        result.checks.append(f"{handler['event_type']}: answers the sign-in Form (link to /auth/login)")
        return True, ""
    titles = answer_titles(node)
    if answer is None:
        if titles and not returns_nothing(node):
            return False, f"action {handler['event_type']}: empty answer, documented {sorted(titles)}"
        result.checks.append(f"{handler['event_type']}: empty 200, as the handler returns nothing")
    else:
        if answer.get("title") not in titles:
            return False, f"action {handler['event_type']}: answered {answer}, documented titles {sorted(titles)}"
        result.checks.append(f"{handler['event_type']}: answered {answer['title']!r}")
        if "fields" in answer:  # a Form: submit its own default values, expect the documented Message
            data = {f["name"]: f.get("value") for f in answer["fields"] if "name" in f}
            step = {**payload, "data": data}
            second = post(url, step, secret)
            reply = second.json() if second.status_code == 200 and second.content else None
            if not reply or reply.get("title") not in titles or "fields" in reply:
                return False, f"action {handler['event_type']}: submitted form answered {second.status_code} {reply}"
            result.checks.append(f"{handler['event_type']}: the submitted Form answered {reply['title']!r}")
    for line in printed(node, ActionEvent.model_validate(payload)):
        ingress.wait_for_output(re.escape(line), timeout=20)
        result.checks.append(f"{handler['event_type']}: the ingress printed {line!r}")
    return True, ""


def check_webhook(
    result: Result, url: str, handler: dict[str, Any], node: Any, worker: Any, secret: str, api: ApiStandIn
) -> tuple[bool, str]:
    from frameio_kit import WebhookEvent
    from frameio_kit.testing import webhook_payload

    resource = f"res-{uuid.uuid4().hex[:8]}"
    payload = webhook_payload(handler["event_type"], resource_id=resource, **installed_ids(handler, "webhook"))
    response = post(url, payload, secret)
    if response.status_code != 202:
        return False, f"webhook {handler['event_type']}: {response.status_code} {response.text[:200]}"
    event_type = re.escape(handler["event_type"])
    finished = re.compile(rf"(done|dead-lettered|retry|failed)[^\n]*{event_type} resource={resource}\b")
    with contextlib.suppress(AssertionError):  # judged below, from what the worker logged
        wait_until(lambda: finished.search(worker.output()), timeout=120, interval=0.1, what="the worker")
    seen = finished.search(worker.output())
    if not seen or seen.group(1) != "done":
        lines = worker.output().splitlines()
        tail = "\n".join(line for line in lines if resource in line)[-600:] or "\n".join(lines[-15:])
        return False, f"webhook {handler['event_type']}: the worker did not finish it: {tail or 'nothing logged'}"
    result.checks.append(f"{handler['event_type']}: 202, then done in the worker")
    for line in printed(node, WebhookEvent.model_validate(payload)):
        worker.wait_for_output(re.escape(line), timeout=20)
        result.checks.append(f"{handler['event_type']}: the worker printed {line!r}")
    source = ast.unparse(node)
    if "file.data.name" in source and "print" in source:
        worker.wait_for_output(re.escape(FILE_NAME), timeout=20)
        result.checks.append(f"{handler['event_type']}: printed the file name the API stand-in served")
    if "comments.create" in source:
        posted = [c for c in api.calls if c[0] == "POST" and f"/files/{resource}/comments" in c[1]]
        if not posted:
            return False, f"webhook {handler['event_type']}: no comment reached the API stand-in"
        result.checks.append(f"{handler['event_type']}: posted comment {posted[0][2]['data']['text']!r}")
    return True, ""


def run_example(
    example: Example,
    workdir: Path,
    base_env: dict[str, str],
    api: ApiStandIn,
    services: Services,
) -> Result:
    result = Result(example.id)
    api_url = f"http://127.0.0.1:{api.server_address[1]}"

    def env_for(source: str) -> dict[str, str]:
        return example_env(base_env, source, api_url)

    built = build(example, workdir, env_for)
    if built is None:
        return result.settle("fragment", f"not a program: {program(example.code).syntax_error}")
    result.adjustments = list(built.program.adjustments)
    probe = built.probe
    if probe["error"] is not None:
        return classify_error(result, built, example)
    result.checks.append("imports and constructs")
    if probe["result"] is not None:
        result.checks.append(f"the fragment returns {probe['result']}")
    for called in probe["called"]:
        if called["error"]:
            reason = f"{called['function']}(event) raised {called['error']}"
            return result.settle("fragment" if "..." in example.code else "fails", reason)
        result.checks.append(f"{called['function']}(event) ran on a sample event")
    for middleware in probe.get("middleware", []):
        if middleware["skipped"]:
            continue
        if middleware["error"]:
            return result.settle("fails", f"middleware {middleware['class']}: {middleware['error']}")
        result.checks.append(f"middleware {middleware['class']}() ran around a webhook and an action handler")
    middlewares = [m for m in probe.get("middleware", []) if not m["skipped"]]
    ran = [probe["result"], probe["called"], probe["apps"], middlewares]
    defined = top_level(fill_placeholders(example.code)[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    if defined and not any(ran):
        return result.settle("fragment", f"defines {', '.join(sorted(defined))} and nothing it shows runs it")
    for app in probe["apps"]:
        if app["problems"] == [INSTALL_WITHOUT_HANDLERS]:
            return result.settle(
                "differs-by-design",
                "validate_configuration() also reports an install=True App with no handler to install "
                "(the excerpt shows configuration only)",
            )
        if app["problems"]:
            return result.settle("fails", f"validate_configuration(): {app['problems']}")
        result.checks.append(f"{app['var']}.validate_configuration() is []")
    apps = [a for a in probe["apps"] if a["handlers"]]
    if not apps:
        return result
    app = apps[-1] if not any(a["var"] == "app" for a in apps) else next(a for a in apps if a["var"] == "app")
    source = built.path.read_text()
    runnable, skipped = [], []
    for handler in app["handlers"]:
        node = function_node(source, handler["function"], handler["line"])
        reader = reader_supplied(source, node) if node is not None else []
        if node is None:
            skipped.append(f"{handler['event_type']}: handler source not found")
        elif reader:
            skipped.append(f"{handler['event_type']}: {'; '.join(reader)}")
        elif "get_install_config" in ast.unparse(node) and not app["install"]:
            skipped.append(f"{handler['event_type']}: reads get_install_config() on an App without install=True")
        elif handler["secret"] is None:
            skipped.append(f"{handler['event_type']}: its secret comes from a resolver or install records")
        else:
            runnable.append((handler, node))
    if runnable:
        env = env_for(source)
        target = f"{built.path}:{app['var']}"
        url, ingress = services.ingress(target, env)
        webhooks = [h for h in runnable if h[0]["kind"] == "webhook"]
        reads = env_names(source)
        worker = services.worker(target, env, reads) if webhooks else None
        if worker is not None and reads & {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET"}:
            result.checks.append("the worker is given the secrets the module reads at import (os.environ[...])")
        for handler, node in runnable:
            if handler["kind"] == "webhook":
                ok, why = check_webhook(result, url, handler, node, worker, handler["secret"], api)
            else:
                ok, why = check_action(result, url, handler, node, ingress, handler["secret"])
            if not ok:
                return result.settle("fails", why)
    if skipped:
        result.checks += [f"not run end to end: {s}" for s in skipped]
        if not runnable:
            return result.settle("fragment", "; ".join(skipped))
    return result


class Services:
    """A real `frameio-kit ingress` and `worker` per example, as users start them; stopped after it."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[Any] = []

    def ingress(self, target: str, env: dict[str, str]) -> tuple[str, Any]:
        from tests.helpers import ROOT, Service, cli_command, free_port

        port = free_port()
        svc = Service("ingress", cli_command("ingress", target, "--port", str(port)), env, self.logdir, cwd=ROOT)
        self.started.append(svc)
        url = f"http://127.0.0.1:{port}"
        svc.wait_for_http(url + "/healthz", timeout=60)
        return url, svc

    def worker(self, target: str, env: dict[str, str], reads: set[str]) -> Any:
        """Without the signing secrets, as the README runs workers, unless the module itself reads them
        at import (`secret=os.environ["WEBHOOK_SECRET"]`): a worker imports the module too."""
        from tests.helpers import ROOT, Service, cli_command

        kit_secrets = {"WEBHOOK_SECRET", "CUSTOM_ACTION_SECRET"} - reads
        worker_env = {k: v for k, v in env.items() if k not in kit_secrets}
        svc = Service("worker", cli_command("worker", target, "--concurrency", "4"), worker_env, self.logdir, cwd=ROOT)
        self.started.append(svc)
        svc.wait_for_output(r" ready\.", timeout=90)
        return svc

    def stop(self) -> None:
        for svc in self.started:
            svc.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    started = Services(tmp_path)
    yield started
    started.stop()


@pytest.mark.parametrize("example", EXAMPLES or [None], ids=[e.id for e in EXAMPLES] or ["no-checkout"])
def test_upstream_example(
    example: Example | None,
    workdir: Path,
    base_env: dict[str, str],
    api: ApiStandIn,
    services: Services,
    redis_client: Any,
) -> None:
    if example is None:
        pytest.skip(f"{CHECKOUT} holds no README.md or docs/")
    _checkout()
    result = run_example(example, workdir, base_env, api, services)
    RESULTS[example.id] = result
    expected = EXPECTED.get(example.id, "pass")
    assert result.outcome == expected, f"{example.id}: {result.outcome} ({result.reason}); expected {expected}"


def test_the_issue_counts_74_examples() -> None:
    """The issue's count: every ```python block of README.md and docs/ (AGENTS.md is not documentation)."""
    _checkout()
    assert len(EXAMPLES) == 74


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "probe":
    probe_main(sys.argv[2], sys.argv[3], sys.argv[4])
