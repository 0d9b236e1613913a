"""The adapters that own a dependency's internals (ingress/uvicorn_compat.py, workers/celery_compat.py):
each check passes against the installed library, names the supported versions when something it uses is
gone, and states the same bounds as pyproject.toml. Marked smoke: CI runs these on the lowest versions too."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import celery.worker.request
import celery.worker.state
import pytest
import uvicorn.protocols.http.flow_control as flow_control
import uvicorn.protocols.http.httptools_impl as httptools_impl
from packaging.requirements import Requirement

from ingress import uvicorn_compat
from shared.errors import ConfigurationError
from workers import celery_compat

pytestmark = pytest.mark.smoke

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _declared(name: str) -> Requirement:
    for line in tomllib.loads(_PYPROJECT.read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


@pytest.mark.parametrize(("adapter", "name"), [(uvicorn_compat, "uvicorn"), (celery_compat, "celery")])
def test_adapter_states_the_bounds_pyproject_declares(adapter: Any, name: str) -> None:
    assert Requirement(adapter.SUPPORTED).specifier == _declared(name).specifier


def test_uvicorn_check_passes_on_the_installed_uvicorn() -> None:
    uvicorn_compat.check()


def test_the_ingress_protocol_subclasses_uvicorns_own_class() -> None:
    from ingress.server import LimitedHttpToolsProtocol

    assert uvicorn_compat.HttpToolsProtocol is httptools_impl.HttpToolsProtocol
    assert issubclass(LimitedHttpToolsProtocol, httptools_impl.HttpToolsProtocol)


@pytest.mark.parametrize("method", ["on_response_complete", "on_headers_complete", "on_message_complete"])
def test_uvicorn_check_names_the_supported_versions_when_a_protocol_method_is_gone(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.delattr(httptools_impl.HttpToolsProtocol, method)
    with pytest.raises(ConfigurationError, match=rf"HttpToolsProtocol\.{method}.*install uvicorn>=0\.30,<0\.56"):
        uvicorn_compat.check()


def test_uvicorn_check_fails_when_the_request_cycle_no_longer_sets_what_the_transport_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Instance attributes live on instances: drop one from the real cycle's constructor."""
    real_init = httptools_impl.RequestResponseCycle.__init__

    def init_without_the_content_length(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.more_body, self.response_started = True, False

    monkeypatch.setattr(httptools_impl.RequestResponseCycle, "__init__", init_without_the_content_length)
    with pytest.raises(ConfigurationError, match=r"RequestResponseCycle\.expected_content_length"):
        uvicorn_compat.check()


@pytest.mark.parametrize("method", ["pause_reading", "resume_reading"])
def test_uvicorn_check_fails_when_flow_control_no_longer_goes_through_the_transport(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The pipeline limit holds reading in the transport wrapper: a flow control that stopped calling the
    transport would bypass it."""

    def flag_only(self: Any) -> None:
        self.read_paused = method == "pause_reading"

    monkeypatch.setattr(flow_control.FlowControl, method, flag_only)
    with pytest.raises(ConfigurationError, match=rf"FlowControl\.{method} \(set or read in {method}\)"):
        uvicorn_compat.check()


def test_uvicorn_check_fails_when_the_request_cycle_no_longer_says_its_response_is_complete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_init = httptools_impl.RequestResponseCycle.__init__

    def init_without_completion(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.more_body, self.response_started, self.expected_content_length = True, False, 0

    monkeypatch.setattr(httptools_impl.RequestResponseCycle, "__init__", init_without_completion)
    with pytest.raises(ConfigurationError, match=r"RequestResponseCycle\.response_complete"):
        uvicorn_compat.check()


def test_celery_check_passes_on_the_installed_celery() -> None:
    celery_compat.check()


@pytest.mark.parametrize("name", ["scheduled_requests", "reserved_requests", "active_requests"])
def test_celery_check_names_the_supported_versions_when_worker_state_lacks_a_set(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delattr(celery.worker.state, name)
    with pytest.raises(ConfigurationError, match=rf"celery\.worker\.state\.{name}.*install celery>=5\.7,<5\.8"):
        celery_compat.check()


def test_celery_check_fails_when_a_request_no_longer_says_whether_it_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(celery.worker.request.Request, "acknowledged")
    with pytest.raises(ConfigurationError, match=r"Request\.acknowledged"):
        celery_compat.check()


def test_held_requests_reads_the_real_worker_state_sets() -> None:
    """What shutdown requeues is exactly what Celery's worker state holds, ETA-waiting requests included."""

    class Held:  # WeakSet members must be weak-referenceable; worker state holds Request objects
        pass

    running, prefetched, waiting = Held(), Held(), Held()
    celery.worker.state.active_requests.add(running)
    celery.worker.state.reserved_requests.add(prefetched)
    celery.worker.state.scheduled_requests.add(waiting)
    try:
        assert {running, prefetched, waiting} <= celery_compat.held_requests()
        assert celery_compat.running_count() >= 1
    finally:
        celery.worker.state.active_requests.discard(running)
        celery.worker.state.reserved_requests.discard(prefetched)
        celery.worker.state.scheduled_requests.discard(waiting)


def test_an_ingress_on_an_unsupported_uvicorn_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check runs in the lifespan, so each server process stops before serving."""
    from starlette.testclient import TestClient

    from frameio_kit import App
    from ingress.app import create_app
    from shared.settings import Settings

    monkeypatch.delattr(httptools_impl.HttpToolsProtocol, "on_response_complete")
    web = create_app(App(), Settings())
    with pytest.raises(ConfigurationError, match=r"install uvicorn>=0\.30,<0\.56"), TestClient(web):
        pass
